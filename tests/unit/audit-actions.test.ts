/**
 * Every action the server writes to the audit log has words in shared/audit-actions.ts: the
 * server's `work.audit(orgId, '<action>', ...)` calls are read from the source, so a new action
 * without a sentence fails here instead of showing as a raw id on the audit page.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS, changedFields, describeAuditAction } from '../../shared/audit-actions.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** The action ids in the server's audit writes: string literals between `.audit(` and the target. */
function writtenActions(): Set<string> {
  const found = new Set<string>();
  for (const file of sources('server')) {
    const text = readFileSync(file, 'utf8');
    for (const call of text.matchAll(/\.audit\(([\s\S]*?)\{\s*type:/g)) {
      for (const literal of call[1]!.matchAll(/'([A-Za-z]+\.[A-Za-z_]+)'/g)) found.add(literal[1]!);
    }
  }
  return found;
}

describe('audit actions in words', () => {
  it('finds the audit writes (sanity)', () => {
    const actions = writtenActions();
    expect(actions.size).toBeGreaterThan(20);
    expect(actions).toContain('member.role_changed');
    expect(actions).toContain('providerKey.rotated'); // from a ternary
    expect(actions).toContain('member.left');
  });

  it('has a sentence for every action the server writes', () => {
    const missing = [...writtenActions()].filter((a) => !AUDIT_ACTIONS[a]);
    expect(missing, 'add these to shared/audit-actions.ts').toEqual([]);
  });

  it('writes sentences, not ids', () => {
    for (const [action, spec] of Object.entries(AUDIT_ACTIONS)) {
      const text = spec.sentence({ before: null, after: null });
      expect(text, action).toMatch(/^[A-Z]/);
      expect(text, action).not.toContain(action);
      expect(spec.label, action).not.toMatch(/\b[a-z]+\.[a-z_]+\b/i);
    }
    expect(describeAuditAction('member.role_changed', { before: { role: 'developer' }, after: { role: 'admin' } })).toBe("Changed a member's role from Developer to Admin");
    expect(describeAuditAction('invitation.created', { before: null, after: { email: 'a@b.co', role: 'admin' } })).toBe('Invited a@b.co as Admin');
    expect(describeAuditAction('webhook.secret_rotated', { before: null, after: null })).toBe('Webhook secret rotated');
  });

  it('keeps only changed fields of an update, and every field of a creation', () => {
    expect(changedFields({ before: { enabled: true, threshold: '10.00', amount: '50.00' }, after: { enabled: true, threshold: '20.00', amount: '50.00' } }).map((f) => f.key)).toEqual(['threshold']);
    expect(changedFields({ before: null, after: { name: 'A', role: 'admin', rpmLimit: null } }).map((f) => f.key)).toEqual(['name', 'role']);
    expect(changedFields({ before: { name: 'A' }, after: null }).map((f) => f.key)).toEqual(['name']);
    expect(changedFields({ before: { a: { x: 1 } }, after: { a: { x: 1 }, b: 2 } }).map((f) => f.key)).toEqual(['b']);
    expect(changedFields({ before: { name: 'ci', rpmLimit: 10 }, after: { rpmLimit: 20 } }).map((f) => f.key)).toEqual(['rpmLimit']);
  });
});
