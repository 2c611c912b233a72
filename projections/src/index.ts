export * from './unitOfWork.js';
export * from './projection.js';
export * from './projector.js';
export * from './requests.js';
export * from './merchantStats.js';
export * from './preferences.js';
export * from './streamReplay.js';
export * from './liveVersions.js';
export * from './rebuild.js';

import { merchantStatsProjection } from './merchantStats.js';
import { preferencesProjection } from './preferences.js';
import { requestsProjection } from './requests.js';

export const ALL_PROJECTIONS = [requestsProjection, merchantStatsProjection, preferencesProjection];
export * from './parking.js';
export * from './attempts.js';
export * from './poison.js';
