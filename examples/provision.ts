/**
 * Provisions an organization, a project in it and a gateway API key for that project
 * through the API, with a personal token:
 *
 *   GATEWAY_URL=http://localhost:3000 GATEWAY_TOKEN=... npx tsx examples/provision.ts "Acme" "Backend"
 *
 * Prints `{ orgId, projectId, apiKeyId, key }` as JSON (the key is shown once: store it now).
 */
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { createGatewayClient } from '../client-sdk/index.js';

export interface Provisioned {
  orgId: string;
  projectId: string;
  apiKeyId: string;
  key: string;
}

export async function provision(opts: { url: string; token: string; organization: string; project: string; keyName?: string }): Promise<Provisioned> {
  const client = createGatewayClient({ url: opts.url, token: opts.token, WebSocket, lazy: true });
  try {
    const { organization } = await client.organization.create.mutate({ name: opts.organization });
    const project = await client.project.create.mutate({ orgId: organization.id, name: opts.project });
    const { apiKey, key } = await client.apiKey.create.mutate({ projectId: project.id, name: opts.keyName ?? `${opts.project} key` });
    return { orgId: organization.id, projectId: project.id, apiKeyId: apiKey.id, key };
  } finally {
    await client.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.env.GATEWAY_URL ?? 'http://localhost:3000';
  const token = process.env.GATEWAY_TOKEN;
  if (!token) {
    console.error('Set GATEWAY_TOKEN to a personal API token (Settings -> API tokens, or auth.tokens.create).');
    process.exit(1);
  }
  const [organization = 'My Organization', project = 'My Project'] = process.argv.slice(2);
  provision({ url, token, organization, project }).then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (err: unknown) => {
      console.error('provisioning failed:', err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
