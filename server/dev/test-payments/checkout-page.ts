/**
 * The test-payment provider's checkout page, served by the product at /test-payments/checkout/:id,
 * and its hosted invoice pages (/test-payments/invoices/:id, with /pdf).
 */
import type { FastifyInstance } from 'fastify';
import { isSameOriginRequest } from '../../auth/origin.js';
import { TEST_METHODS, type FakeStripe, type TestMethod } from './fake-stripe.js';

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1f2328;margin:0;display:flex;justify-content:center;padding:40px 16px}
main{background:#fff;border:1px solid #d8dde3;border-radius:12px;max-width:440px;width:100%;padding:28px;box-shadow:0 2px 12px rgba(0,0,0,.05)}
.badge{display:inline-block;background:#fff4d6;color:#7a5200;border:1px solid #f0d48a;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600;letter-spacing:.02em}
h1{font-size:20px;margin:14px 0 4px}.amount{font-size:32px;font-weight:700;margin:8px 0 18px}
fieldset{border:0;padding:0;margin:0 0 18px}legend{font-weight:600;margin-bottom:8px}
label{display:flex;gap:10px;align-items:center;border:1px solid #d8dde3;border-radius:8px;padding:10px 12px;margin-bottom:8px;cursor:pointer}
label:has(input:checked){border-color:#4f46e5;background:#f5f5ff}
button{width:100%;background:#4f46e5;color:#fff;border:0;border-radius:8px;padding:12px;font-size:16px;font-weight:600;cursor:pointer}
button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #a5b4fc;outline-offset:2px}
.error{background:#fdecec;border:1px solid #f3b4b4;color:#8a1c1c;border-radius:8px;padding:10px 12px;margin-bottom:14px}
.muted{color:#59636e;font-size:14px}a{color:#4f46e5}
</style></head><body><main>${body}</main></body></html>`;
}

export function registerCheckoutPages(app: FastifyInstance, fake: FakeStripe, prefix = '/test-payments'): void {
  const render = async (id: string, error?: string) => {
    const session = await fake.store.get(id);
    if (!session || session.object !== 'checkout.session') return null;
    const what = session.mode === 'setup' ? 'Save a payment method' : session.mode === 'subscription' ? 'Subscribe' : 'Buy credits';
    const amount = session.amount_total != null ? `$${(session.amount_total / 100).toFixed(2)}` : '';
    const methods = (Object.keys(TEST_METHODS) as TestMethod[]).filter((m) => {
      const t = TEST_METHODS[m].type;
      return (session.payment_method_types as string[]).includes(t) || (session.mode !== 'setup' && t === 'card');
    });
    if (session.status !== 'open') {
      return page('Checkout', `<span class="badge">Test mode</span><h1>This checkout is finished</h1><p class="muted">Nothing more to do here.</p><p><a href="${esc(session.success_url)}">Back to the dashboard</a></p>`);
    }
    return page(
      'Test checkout',
      `<span class="badge">Test mode · no real money moves</span>
<h1>${esc(what)}</h1>${amount ? `<div class="amount">${esc(amount)}${session.mode === 'subscription' ? ` <span class="muted">per ${esc(session._price?.interval ?? 'month')}</span>` : ''}</div>` : '<p class="muted">Add a payment method for later charges, such as auto top-up.</p>'}
${error ? `<div class="error" role="alert">${esc(error)}</div>` : ''}
<form method="post" action="${prefix}/checkout/${esc(id)}">
<fieldset><legend>Test payment method</legend>
${methods.map((m, i) => `<label><input type="radio" name="method" value="${m}" ${i === 0 ? 'checked' : ''}> ${esc(TEST_METHODS[m].label)}</label>`).join('\n')}
</fieldset>
<button type="submit">${session.mode === 'setup' ? 'Save payment method' : `Pay ${esc(amount)}`}</button>
</form>
<p class="muted">${session.cancel_url ? `<a href="${esc(session.cancel_url)}">Cancel and go back</a>` : ''}</p>`,
    );
  };

  app.get(`${prefix}/checkout/:id`, async (req, reply) => {
    const html = await render((req.params as { id: string }).id);
    if (!html) return reply.code(404).type('text/html').send(page('Not found', '<h1>Checkout not found</h1>'));
    return reply.type('text/html').send(html);
  });

  app.post(`${prefix}/checkout/:id`, async (req, reply) => {
    if (!isSameOriginRequest(req)) return reply.code(403).send({ error: 'cross-origin form posts are not allowed' });
    const id = (req.params as { id: string }).id;
    const method = String((req.body as Record<string, unknown> | undefined)?.method ?? 'card') as TestMethod;
    if (!(method in TEST_METHODS)) return reply.code(400).type('text/html').send(await render(id, 'Choose a test payment method.'));
    try {
      const { session, outcome } = await fake.completeCheckout(id, method);
      if (outcome === 'declined') return reply.code(402).type('text/html').send(await render(id, 'Your card was declined. Try another payment method.'));
      return reply.redirect(session.success_url, 303);
    } catch (err) {
      return reply.code(400).type('text/html').send((await render(id, (err as Error).message)) ?? page('Checkout', esc((err as Error).message)));
    }
  });
  registerInvoicePages(app, fake, prefix);
}

const money = (cents: number) => `${cents < 0 ? '-' : ''}$${(Math.abs(cents) / 100).toFixed(2)}`;
const day = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);

/** PDF text strings escape backslashes and parentheses; only printable ASCII is kept. */
const pdfText = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').replace(/[\\()]/g, (c) => `\\${c}`);

/** A one-page PDF of the invoice (hand-written PDF 1.4: a text stream in Helvetica, exact xref offsets). */
export function invoicePdf(invoice: Record<string, any>): Buffer {
  const lines: [number, number, string][] = [
    [20, 780, 'Invoice (test mode: no real money moved)'],
    [11, 750, `Invoice number: ${invoice.number ?? invoice.id}`],
    [11, 734, `Date: ${day(invoice.created)}`],
    [11, 718, `Period: ${day(invoice.period_start)} to ${day(invoice.period_end)}`],
    [11, 702, `Status: ${invoice.status}`],
  ];
  let y = 670;
  for (const l of (invoice.lines?.data ?? []) as Record<string, any>[]) {
    lines.push([11, y, `${l.description}: ${money(l.amount)}`]);
    y -= 16;
  }
  lines.push([12, y - 10, `Total: ${money(invoice.total ?? invoice.amount_due)}   Amount paid: ${money(invoice.amount_paid ?? 0)}`]);
  const content = lines.map(([size, ty, text]) => `BT /F1 ${size} Tf 50 ${ty} Td (${pdfText(text)}) Tj ET`).join('\n');
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>',
    `<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(Buffer.byteLength(out, 'latin1'));
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = Buffer.byteLength(out, 'latin1');
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** The hosted invoice page and its PDF (what `hosted_invoice_url` and `invoice_pdf` point at). */
export function registerInvoicePages(app: FastifyInstance, fake: FakeStripe, prefix = '/test-payments'): void {
  const load = async (id: string) => {
    const invoice = await fake.store.get(id);
    return invoice && invoice.object === 'invoice' ? invoice : null;
  };
  app.get(`${prefix}/invoices/:id`, async (req, reply) => {
    const invoice = await load((req.params as { id: string }).id);
    if (!invoice) return reply.code(404).type('text/html').send(page('Not found', '<h1>Invoice not found</h1>'));
    const rows = ((invoice.lines?.data ?? []) as Record<string, any>[])
      .map((l) => `<tr><td>${esc(l.description)}<br><span class="muted">${esc(day(l.period.start))} to ${esc(day(l.period.end))}</span></td><td style="text-align:right">${esc(money(l.amount))}</td></tr>`)
      .join('');
    return reply.type('text/html').send(
      page(
        `Invoice ${invoice.number ?? invoice.id}`,
        `<span class="badge">Test mode · no real money moved</span>
<h1>Invoice ${esc(invoice.number ?? invoice.id)}</h1>
<p class="muted">${esc(day(invoice.created))} · ${esc(invoice.status)}</p>
<div class="amount">${esc(money(invoice.amount_paid ?? 0))} <span class="muted">paid</span></div>
<table style="width:100%;border-collapse:collapse;margin-bottom:18px">${rows}<tr><td><strong>Total</strong></td><td style="text-align:right"><strong>${esc(money(invoice.total ?? invoice.amount_due))}</strong></td></tr></table>
<p><a href="${prefix}/invoices/${esc(invoice.id)}/pdf">Download PDF</a></p>`,
      ),
    );
  });
  app.get(`${prefix}/invoices/:id/pdf`, async (req, reply) => {
    const invoice = await load((req.params as { id: string }).id);
    if (!invoice) return reply.code(404).send({ error: 'invoice not found' });
    return reply
      .type('application/pdf')
      .header('content-disposition', `attachment; filename="invoice-${String(invoice.number ?? invoice.id).replace(/[^A-Za-z0-9-]/g, '')}.pdf"`)
      .send(invoicePdf(invoice));
  });
}
