/**
 * An API key's allow lists, shared by the gateway (which enforces them) and the dashboard (which
 * explains them). A model pattern is `provider/model`, `provider/*`, a bare model id (any provider
 * serving it), or `*`; ids are compared case-insensitively, aliases included. A provider entry is a
 * catalog provider id or `custom`.
 */
export const MAX_PATTERNS = 50;

const clean = (s: string) => s.trim().toLowerCase();

/** Whether `pattern` names the call's provider and model (or one of the model's aliases). */
export function modelMatches(pattern: string, provider: string, modelIds: readonly string[]): boolean {
  const p = clean(pattern);
  if (p === '*' || p === '*/*') return true;
  const ids = modelIds.map(clean);
  // A whole id (`gpt-4o`, or a custom provider's `myproxy/llama`), or a prefix of one (`myproxy/*`, `gpt-4o*`).
  if (ids.includes(p)) return true;
  if (p.endsWith('*') && ids.some((id) => id.startsWith(p.slice(0, -1)))) return true;
  const slash = p.indexOf('/');
  if (slash < 0) return false;
  const [prov, model] = [p.slice(0, slash), p.slice(slash + 1)];
  if (prov !== clean(provider) && prov !== '*') return false;
  if (model === '*') return true;
  if (model.endsWith('*')) return ids.some((id) => id.startsWith(model.slice(0, -1)));
  return ids.includes(model);
}

export interface KeyAllowLists {
  allowedModels: readonly string[] | null;
  allowedProviders: readonly string[] | null;
}

/** Why the key may not call this model, or null when it may. */
export function keyRefusal(rules: KeyAllowLists, provider: string, modelIds: readonly string[]): string | null {
  if (rules.allowedProviders && !rules.allowedProviders.some((p) => clean(p) === clean(provider))) {
    return `this API key may call only ${rules.allowedProviders.join(', ')}; not ${provider}`;
  }
  if (rules.allowedModels && !rules.allowedModels.some((p) => modelMatches(p, provider, modelIds))) {
    return `this API key may call only the models ${rules.allowedModels.join(', ')}; not ${provider}/${modelIds[0] ?? ''}`;
  }
  return null;
}

/** Whether pattern `outer` allows everything pattern `inner` does (judged by their text). */
function covers(outer: string, inner: string): boolean {
  const [o, i] = [clean(outer), clean(inner)];
  if (o === i || o === '*' || o === '*/*') return true;
  if (o.endsWith('/*')) return i.startsWith(o.slice(0, -1));
  if (o.endsWith('*')) return !i.endsWith('*') && i.startsWith(o.slice(0, -1));
  return false;
}

/** Whether list `next` allows no more than `current` does (null allows everything). */
export function narrowerOrEqual(current: readonly string[] | null, next: readonly string[] | null): boolean {
  if (current === null) return true;
  if (next === null) return false;
  return next.every((p) => current.some((c) => covers(c, p)));
}
