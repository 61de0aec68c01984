/**
 * Run a service until SIGINT/SIGTERM. A configuration problem (an error with code
 * CONFIG_INVALID) is printed as its message alone and exits 78 (EX_CONFIG), not as a stack trace.
 */
export async function runService(start: () => Promise<{ close(): Promise<void> }>): Promise<void> {
  try {
    const service = await start();
    const stop = () => void service.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'CONFIG_INVALID') {
      console.error((err as Error).message);
      process.exit(78);
    }
    throw err;
  }
}
