// A real OpenID provider (npm oidc-provider) for Garonne's monitor tests.
//
// Usage: node provider.mjs PORT MODULES_DIR
// The issuer is http://127.0.0.1:PORT (mounted at the root). Two confidential clients:
//   garonne-probe / right-secret  may use the client_credentials grant;
//   web-login / web-secret        may not (authorization_code only).
// Prints READY once it listens; runs until killed.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, modules] = process.argv.slice(2);
const entry = pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js'));
const { default: Provider } = await import(entry.href);

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'garonne-probe',
      client_secret: 'right-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'api:read',
    },
    {
      client_id: 'web-login',
      client_secret: 'web-secret',
      grant_types: ['authorization_code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      response_types: ['code'],
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
  },
  scopes: ['openid', 'api:read'],
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
