import { MemoryReadStore } from '@settle/platform';
import { describeRebuildScenarios } from './testing/rebuildScenarios.js';

describeRebuildScenarios('the embedded read store', async () => new MemoryReadStore());
