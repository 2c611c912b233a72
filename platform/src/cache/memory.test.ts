import { describeCacheContract } from '../testing/cacheContract.js';
import { MemoryCache } from './port.js';

describeCacheContract('embedded (in-process LRU)', async () => new MemoryCache());
