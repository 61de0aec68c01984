// Entry point: `node dist/police-backend/src/main.js` with the environment in police-backend/README.md.
import { ConfigError, loadConfig } from './config.js';
import { startPoliceBackend } from './service.js';

try {
  const backend = await startPoliceBackend(loadConfig());
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
