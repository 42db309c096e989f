/** The fake upstream in its own process (READY <url>). */
import { startFakeUpstream } from '../../tests/helpers/fake-upstream.js';

const upstream = await startFakeUpstream({ record: false });
process.stdout.write(`READY ${upstream.url}\n`);
process.on('SIGTERM', () => void upstream.close().finally(() => process.exit(0)));
