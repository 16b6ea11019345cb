package io.shoal;

/** One live port of the domain (shoal_port_info_t). */
public record PortInfo(Kind kind, long id, int pid, long held, long queued, long queueCapacity,
        long sent, long received, long dropped, long stale, String service, String process) {
    public enum Kind { PUBLISHER, SUBSCRIBER, CLIENT, SERVER, UNKNOWN }
}
