/** orders-writer entry point: the only file that reads the environment and listens. */
import { ConfigError } from '@trellis/service-platform/env';
import { closeOnSignals } from '@trellis/service-platform/shutdown';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`orders-writer: ${err.message}\n`);
  process.exit(2);
}
const app = await buildApp(config.app);
closeOnSignals(app, config.server.shutdownGraceMs);
await app.listen({ host: config.server.host, port: config.server.port });
