// Preloaded into Portkey's process (node --import) by processes.ts. Portkey 1.15.2 on Node fails every
// streamed call with "TypeError: immutable": it appends its x-portkey-* headers to the upstream's
// fetch Response, whose headers are immutable (Portkey-AI/gateway#1389, #1550; fixed upstream by
// cloning the streamed response, #1551). This does that clone, for streamed answers only, so
// Portkey's non-streamed path is untouched and its streamed path pays one Response object more.
const realFetch = globalThis.fetch;
globalThis.fetch = async (...args) => {
  const res = await realFetch(...args);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return res;
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
};
