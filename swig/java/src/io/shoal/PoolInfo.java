package io.shoal;

/** One chunk pool of the domain (shoal_pool_info_t). */
public record PoolInfo(long chunkSize, long chunkCount, long inUse, long highWater, long allocFailures) {}
