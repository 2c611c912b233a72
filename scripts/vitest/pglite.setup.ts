import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { usePristineCluster } from '@settle/platform';

// New PGlite databases in this test file start from the run's pristine cluster instead of initdb.
usePristineCluster(new Blob([readFileSync(inject('pristinePgliteCluster'))]));
