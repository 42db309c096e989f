/**
 * Reads a retained request/response pair as a conversation: messages with roles, text, images,
 * tool calls and tool results, for the three shapes the gateway serves (OpenAI chat completions,
 * Anthropic messages, OpenAI responses) and embeddings. Anything it does not recognise is left to
 * the raw JSON view (it answers null, or a `json` part for one odd piece).
 */

export type Part =
  | { kind: 'text'; text: string }
  | { kind: 'image'; url: string; inline: boolean }
  | { kind: 'toolCall'; id: string | null; name: string; args: string }
  | { kind: 'toolResult'; id: string | null; text: string; isError: boolean }
  | { kind: 'thinking'; text: string }
  | { kind: 'json'; label: string; value: unknown };

export interface Message {
  role: string;
  name?: string;
  parts: Part[];
}

export interface Conversation {
  format: 'chat.completions' | 'messages' | 'responses' | 'embeddings';
  /** Tools offered to the model (names only). */
  tools: string[];
  request: Message[];
  response: Message[];
  /** Short facts about the response: why it stopped, that it was truncated, vector sizes. */
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const pretty = (v: unknown): string => (typeof v === 'string' ? prettyJsonText(v) : JSON.stringify(v, null, 2) ?? '');

/** Tool arguments arrive as JSON text: indent them when they parse. */
function prettyJsonText(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function image(url: string): Part {
  return { kind: 'image', url, inline: url.startsWith('data:image/') };
}

/** A body the gateway kept only in part ({truncated, preview}). */
export function isTruncated(body: unknown): boolean {
  return isObj(body) && body.truncated === true && typeof body.preview === 'string';
}

// ---------- OpenAI chat completions ----------

function chatContent(content: unknown): Part[] {
  if (typeof content === 'string') return content ? [{ kind: 'text', text: content }] : [];
  if (!Array.isArray(content)) return content == null ? [] : [{ kind: 'json', label: 'content', value: content }];
  return content.map((c): Part => {
    if (isObj(c) && c.type === 'text' && typeof c.text === 'string') return { kind: 'text', text: c.text };
    if (isObj(c) && c.type === 'image_url') {
      const url = isObj(c.image_url) ? str(c.image_url.url) : str(c.image_url);
      if (url) return image(url);
    }
    if (isObj(c) && c.type === 'input_audio') return { kind: 'text', text: '[audio]' };
    return { kind: 'json', label: isObj(c) && typeof c.type === 'string' ? c.type : 'part', value: c };
  });
}

function chatMessage(m: unknown): Message {
  if (!isObj(m)) return { role: 'unknown', parts: [{ kind: 'json', label: 'message', value: m }] };
  const role = str(m.role) ?? 'unknown';
  const parts: Part[] = [];
  if (role === 'tool') parts.push({ kind: 'toolResult', id: str(m.tool_call_id), text: typeof m.content === 'string' ? m.content : pretty(m.content), isError: false });
  else parts.push(...chatContent(m.content));
  if (typeof m.refusal === 'string') parts.push({ kind: 'text', text: `Refused: ${m.refusal}` });
  if (typeof m.reasoning_content === 'string') parts.unshift({ kind: 'thinking', text: m.reasoning_content });
  if (Array.isArray(m.tool_calls)) {
    for (const t of m.tool_calls) {
      const fn = isObj(t) && isObj(t.function) ? t.function : null;
      parts.push({ kind: 'toolCall', id: isObj(t) ? str(t.id) : null, name: str(fn?.name) ?? 'tool', args: pretty(fn?.arguments ?? '') });
    }
  }
  if (isObj(m.function_call)) parts.push({ kind: 'toolCall', id: null, name: str(m.function_call.name) ?? 'function', args: pretty(m.function_call.arguments ?? '') });
  return { role, ...(typeof m.name === 'string' ? { name: m.name } : {}), parts };
}

function readChat(request: Obj | null, response: unknown): Conversation {
  const tools = Array.isArray(request?.tools) ? request.tools.map((t) => (isObj(t) && isObj(t.function) ? str(t.function.name) : null) ?? 'tool') : [];
  const notes: string[] = [];
  const response_: Message[] = [];
  if (isObj(response) && Array.isArray(response.choices)) {
    for (const c of response.choices) {
      if (!isObj(c)) continue;
      response_.push(chatMessage(c.message ?? { role: 'assistant', content: null }));
      if (typeof c.finish_reason === 'string') notes.push(`Stopped: ${c.finish_reason}`);
    }
  } else if (isObj(response) && 'content' in response && 'finish_reason' in response) {
    // A streamed answer, as the gateway keeps it: the concatenated text and why it ended.
    response_.push({ role: 'assistant', parts: chatContent(response.content) });
    notes.push('Streamed', response.finish_reason ? `Stopped: ${String(response.finish_reason)}` : 'Did not finish');
  }
  return { format: 'chat.completions', tools, request: Array.isArray(request?.messages) ? request.messages.map(chatMessage) : [], response: response_, notes };
}

// ---------- Anthropic messages ----------

function anthropicBlocks(content: unknown): Part[] {
  if (typeof content === 'string') return content ? [{ kind: 'text', text: content }] : [];
  if (!Array.isArray(content)) return content == null ? [] : [{ kind: 'json', label: 'content', value: content }];
  return content.map((b): Part => {
    if (!isObj(b)) return { kind: 'json', label: 'block', value: b };
    switch (b.type) {
      case 'text':
        return { kind: 'text', text: str(b.text) ?? '' };
      case 'image': {
        const src = isObj(b.source) ? b.source : null;
        if (src?.type === 'base64' && typeof src.data === 'string') return image(`data:${str(src.media_type) ?? 'image/png'};base64,${src.data}`);
        if (src?.type === 'url' && typeof src.url === 'string') return image(src.url);
        break;
      }
      case 'tool_use':
      case 'server_tool_use':
        return { kind: 'toolCall', id: str(b.id), name: str(b.name) ?? 'tool', args: pretty(b.input ?? {}) };
      case 'tool_result': {
        const inner = Array.isArray(b.content) ? b.content.map((c) => (isObj(c) && c.type === 'text' ? str(c.text) ?? '' : pretty(c))).join('\n') : typeof b.content === 'string' ? b.content : pretty(b.content ?? '');
        return { kind: 'toolResult', id: str(b.tool_use_id), text: inner, isError: b.is_error === true };
      }
      case 'thinking':
        return { kind: 'thinking', text: str(b.thinking) ?? '' };
      case 'redacted_thinking':
        return { kind: 'thinking', text: '[redacted]' };
    }
    return { kind: 'json', label: str(b.type) ?? 'block', value: b };
  });
}

function readMessages(request: Obj | null, response: unknown): Conversation {
  const messages: Message[] = [];
  const system = request?.system;
  if (system != null && system !== '') messages.push({ role: 'system', parts: anthropicBlocks(system) });
  if (Array.isArray(request?.messages)) {
    for (const m of request.messages) messages.push(isObj(m) ? { role: str(m.role) ?? 'unknown', parts: anthropicBlocks(m.content) } : { role: 'unknown', parts: [{ kind: 'json', label: 'message', value: m }] });
  }
  const tools = Array.isArray(request?.tools) ? request.tools.map((t) => (isObj(t) ? str(t.name) : null) ?? 'tool') : [];
  const out: Message[] = [];
  const notes: string[] = [];
  if (isObj(response) && Array.isArray(response.content)) {
    out.push({ role: str(response.role) ?? 'assistant', parts: anthropicBlocks(response.content) });
    if (typeof response.stop_reason === 'string') notes.push(`Stopped: ${response.stop_reason}`);
  } else if (isObj(response) && typeof response.content === 'string') {
    out.push({ role: 'assistant', parts: anthropicBlocks(response.content) });
    notes.push('Streamed');
    const stop = response.stop_reason ?? response.finish_reason;
    if (typeof stop === 'string') notes.push(`Stopped: ${stop}`);
  }
  return { format: 'messages', tools, request: messages, response: out, notes };
}

// ---------- OpenAI responses ----------

function responsesContent(content: unknown): Part[] {
  if (typeof content === 'string') return content ? [{ kind: 'text', text: content }] : [];
  if (!Array.isArray(content)) return content == null ? [] : [{ kind: 'json', label: 'content', value: content }];
  return content.map((c): Part => {
    if (isObj(c) && (c.type === 'input_text' || c.type === 'output_text' || c.type === 'text') && typeof c.text === 'string') return { kind: 'text', text: c.text };
    if (isObj(c) && c.type === 'refusal' && typeof c.refusal === 'string') return { kind: 'text', text: `Refused: ${c.refusal}` };
    if (isObj(c) && c.type === 'input_image' && typeof c.image_url === 'string') return image(c.image_url);
    if (isObj(c) && c.type === 'input_file') return { kind: 'text', text: `[file${typeof c.filename === 'string' ? ` ${c.filename}` : ''}]` };
    return { kind: 'json', label: isObj(c) && typeof c.type === 'string' ? c.type : 'part', value: c };
  });
}

/** Input or output items: messages, function calls and their outputs, reasoning. */
function responsesItems(items: unknown[], defaultRole: string): Message[] {
  const out: Message[] = [];
  for (const item of items) {
    if (!isObj(item)) continue;
    const type = item.type ?? (item.role ? 'message' : undefined);
    if (type === 'message') out.push({ role: str(item.role) ?? defaultRole, parts: responsesContent(item.content) });
    else if (type === 'function_call') out.push({ role: 'assistant', parts: [{ kind: 'toolCall', id: str(item.call_id), name: str(item.name) ?? 'function', args: pretty(item.arguments ?? '') }] });
    else if (type === 'function_call_output') out.push({ role: 'tool', parts: [{ kind: 'toolResult', id: str(item.call_id), text: typeof item.output === 'string' ? item.output : pretty(item.output), isError: false }] });
    else if (type === 'reasoning') {
      const summary = Array.isArray(item.summary) ? item.summary.map((s) => (isObj(s) ? str(s.text) ?? '' : '')).filter(Boolean).join('\n') : '';
      out.push({ role: 'assistant', parts: [{ kind: 'thinking', text: summary || '[reasoning]' }] });
    } else out.push({ role: defaultRole, parts: [{ kind: 'json', label: str(type) ?? 'item', value: item }] });
  }
  return out;
}

function readResponses(request: Obj | null, response: unknown): Conversation {
  const messages: Message[] = [];
  if (typeof request?.instructions === 'string' && request.instructions) messages.push({ role: 'system', parts: [{ kind: 'text', text: request.instructions }] });
  const input = request?.input;
  if (typeof input === 'string') messages.push({ role: 'user', parts: [{ kind: 'text', text: input }] });
  else if (Array.isArray(input)) messages.push(...responsesItems(input, 'user'));
  const tools = Array.isArray(request?.tools) ? request.tools.map((t) => (isObj(t) ? str(t.name) ?? str(t.type) : null) ?? 'tool') : [];
  const notes: string[] = [];
  let out: Message[] = [];
  if (isObj(response) && Array.isArray(response.output)) {
    out = responsesItems(response.output, 'assistant');
    if (typeof response.status === 'string') notes.push(`Status: ${response.status}`);
  } else if (isObj(response) && typeof response.content === 'string') {
    out = [{ role: 'assistant', parts: [{ kind: 'text', text: response.content }] }];
    notes.push('Streamed');
  }
  return { format: 'responses', tools, request: messages, response: out, notes };
}

// ---------- embeddings ----------

function readEmbeddings(request: Obj | null, response: unknown): Conversation {
  const input = request?.input;
  const texts = typeof input === 'string' ? [input] : Array.isArray(input) ? input.map((i) => (typeof i === 'string' ? i : JSON.stringify(i))) : [];
  const notes: string[] = [];
  if (isObj(response) && Array.isArray(response.data)) {
    const first = response.data[0];
    const dims = isObj(first) && Array.isArray(first.embedding) ? first.embedding.length : null;
    notes.push(`${response.data.length} vector${response.data.length === 1 ? '' : 's'}${dims ? ` of ${dims} dimensions` : ''}`);
  }
  return { format: 'embeddings', tools: [], request: texts.map((t) => ({ role: 'input', parts: [{ kind: 'text', text: t }] })), response: [], notes };
}

/** The conversation of a log's bodies, or null when they are absent or not a shape read here. */
export function readConversation(endpoint: string | null | undefined, request: unknown, response: unknown): Conversation | null {
  if (request == null && response == null) return null;
  if (isTruncated(request)) return null;
  const req = isObj(request) ? request : null;
  const res = isTruncated(response) ? null : response;
  const kind =
    endpoint === 'messages' || endpoint === 'responses' || endpoint === 'embeddings' || endpoint === 'chat.completions'
      ? endpoint
      : req && Array.isArray(req.messages) && ('system' in req || (isObj(res) && res.type === 'message'))
        ? 'messages'
        : req && Array.isArray(req.messages)
          ? 'chat.completions'
          : isObj(res) && res.object === 'list'
            ? 'embeddings'
            : req && 'input' in req
              ? 'responses'
              : null;
  let conversation: Conversation | null = null;
  if (kind === 'chat.completions') conversation = readChat(req, res);
  else if (kind === 'messages') conversation = readMessages(req, res);
  else if (kind === 'responses') conversation = readResponses(req, res);
  else if (kind === 'embeddings') conversation = readEmbeddings(req, res);
  if (!conversation || (conversation.request.length === 0 && conversation.response.length === 0 && conversation.notes.length === 0)) return null;
  if (isTruncated(response)) conversation.notes.push('The response was too large to keep whole: the raw JSON shows its beginning');
  return conversation;
}
