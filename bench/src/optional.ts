import { existsSync } from 'node:fs';
import type { Kafka, Message } from 'kafkajs';
import type { MongoClientOptions } from 'mongodb';
import type { StoredEvent } from '@settle/domain';
import type { EventStore, Logger, ReadStore } from '@settle/platform';

/**
 * Adapters other people are still writing (MongoReadStore, the Kafka forwarder) are loaded at run
 * time from platform's build output when present, so the bench builds and runs with or without
 * them; their shapes are restated here, as far as the bench uses them.
 */
export interface MongoReadStoreLike extends ReadStore {
  dropDatabase(): Promise<void>;
}
export interface MongoReadStoreModule {
  MongoReadStore: {
    create(url: string, opts?: { dbName?: string; clientOptions?: MongoClientOptions }): Promise<MongoReadStoreLike>;
  };
}

export interface ForwarderLike {
  readonly position: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}
export interface ForwarderModule {
  createForwarder(opts: {
    eventStore: EventStore;
    kafka: Kafka;
    logger: Logger;
    topicPrefix?: string;
    streamPrefixes?: string[];
    partitions?: number;
    replicationFactor?: number;
    batchSize?: number;
    checkpointName?: string;
  }): ForwarderLike;
}
export interface KafkaCodecModule {
  encodeEvent(event: StoredEvent): Message;
}

const PLATFORM_DIST = new URL('../../platform/dist/', import.meta.url);

/** The module, or why it is not available. */
export async function loadPlatformModule<T>(path: string, source: string): Promise<T | string> {
  const url = new URL(path, PLATFORM_DIST);
  if (!existsSync(url)) return `not available: ${source} does not exist in this build`;
  try {
    return (await import(url.href)) as T;
  } catch (error) {
    return `not available: ${source} failed to load (${(error as Error).message})`;
  }
}
