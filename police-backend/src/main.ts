// Entry point: `node dist/police-backend/src/main.js` with the environment in police-backend/README.md.
import { runService } from '../../backend-kit/run.js';
import { loadConfig } from './config.js';
import { startPoliceBackend } from './service.js';

await runService(() => startPoliceBackend(loadConfig()));
