import { describeLockContract } from '../testing/lockContract.js';
import { MemoryLockManager } from './port.js';

// One process is one replica: both competitors share the instance.
describeLockContract(
  'embedded (in-process)',
  async () => {
    const locks = new MemoryLockManager();
    return [locks, locks];
  },
  // The in-process lock lapses after its TTL even while fn still runs.
  { extendsWhileRunning: true },
);
