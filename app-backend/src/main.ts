// Entry point: `node dist/app-backend/src/main.js` with the environment described in app-backend/README.md.
import { ConfigError, loadConfig } from './config.js';
import { startAppBackend } from './service.js';

try {
  const backend = await startAppBackend(loadConfig());
  const stop = () => void backend.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
