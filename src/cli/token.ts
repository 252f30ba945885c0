import { signToken } from '../auth/authenticate.js';
import { ConfigError, loadConfig } from '../config.js';

/** `npm run -s token -- <principal-id>`: prints a development JWT signed with the server's JWT_SECRET. */
async function main(): Promise<number> {
  const [id, ...rest] = process.argv.slice(2);
  if (!id || rest.length > 0 || !/^[A-Za-z0-9_.-]{1,128}$/.test(id)) {
    console.error('usage: npm run -s token -- <principal-id>   (e.g. u-mgr-1)');
    return 2;
  }
  const config = loadConfig();
  if (config.production) {
    console.error('token: refusing to mint tokens in production (NODE_ENV=production)');
    return 2;
  }
  console.log(await signToken(config.auth, id));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`token: ${e instanceof ConfigError ? e.message : (e as Error).message}`);
    process.exit(1);
  },
);
