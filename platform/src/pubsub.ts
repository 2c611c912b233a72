import mqemitter from 'mqemitter';

export type MQEmitter = mqemitter.MQEmitter;

/** In-process pub/sub (the embedded default); production swaps in mqemitter-redis for fan-out across replicas. */
export const createMemoryPubSub = (): MQEmitter => mqemitter({ concurrency: 0 });

export const REQUEST_UPDATED_TOPIC = 'settle.requestUpdated';
