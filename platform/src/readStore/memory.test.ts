import { describeReadStoreContract } from '../testing/readStoreContract.js';
import { MemoryReadStore } from './memory.js';

describeReadStoreContract('embedded (in-process)', async () => new MemoryReadStore());
