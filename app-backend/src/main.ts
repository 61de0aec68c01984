// Entry point: `node dist/app-backend/src/main.js` with the environment described in app-backend/README.md.
import { runService } from '../../backend-kit/run.js';
import { loadConfig } from './config.js';
import { startAppBackend } from './service.js';

await runService(() => startAppBackend(loadConfig()));
