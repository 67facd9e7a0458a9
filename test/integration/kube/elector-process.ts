// A leader-election candidate as its own process, for failover tests: prints JSON lines on stdout.
// Usage: node elector-process.ts <kubeconfig> <identity> <lease-name>
import { createKubeClients, loadKubeConfig } from '../../../src/kube/index.ts';
import { LeaderElector } from '../../../src/runtime/index.ts';

const [kubeconfig, identity, leaseName] = process.argv.slice(2);
if (!kubeconfig || !identity || !leaseName) {
  console.error('usage: elector-process.ts <kubeconfig> <identity> <lease-name>');
  process.exit(2);
}
const say = (event: string) => console.log(JSON.stringify({ event, identity, at: Date.now() }));

const elector = new LeaderElector({
  lock: createKubeClients(loadKubeConfig(kubeconfig)).leaseLock('default', leaseName),
  identity,
  leaseDurationSeconds: 2,
  renewDeadlineMs: 1_500,
  retryPeriodMs: 200,
  onStartedLeading: (signal) => {
    say('leading');
    return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  },
  onStoppedLeading: () => say('stopped'),
});
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
say('started');
await elector.run(stop.signal);
say('exited');
