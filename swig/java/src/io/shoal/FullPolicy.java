package io.shoal;

import io.shoal.jni.shoal_full_policy_t;

/** What a sender does when a receiver's queue is full. */
public enum FullPolicy {
    /** The oldest queued chunk is released (and counted as dropped). */
    DROP_OLDEST(shoal_full_policy_t.SHOAL_FULL_DROP_OLDEST),
    /** The send fails with {@link ShoalException#QUEUE_FULL}. */
    REJECT(shoal_full_policy_t.SHOAL_FULL_REJECT),
    /** The sender waits up to its send timeout. */
    WAIT(shoal_full_policy_t.SHOAL_FULL_WAIT);

    final int value;

    FullPolicy(int value) {
        this.value = value;
    }
}
