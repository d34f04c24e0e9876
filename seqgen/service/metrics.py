"""Prometheus metrics of one server (its own registry, so tests can run several apps)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("seqgen_requests", "HTTP requests by path and status", ["path", "status"], registry=r)
        self.tokens = Counter("seqgen_tokens_generated", "Tokens generated", ["model"], registry=r)
        self.batch = Gauge("seqgen_batch_streams", "Streams in the model's batch (occupancy)", ["model"], registry=r)
        self.queue = Gauge("seqgen_queue_length", "Requests waiting to join the batch", ["model"], registry=r)
        self.ttft = Histogram("seqgen_time_to_first_token_seconds", "Request arrival to first token sent",
                              ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.token_latency = Histogram("seqgen_token_latency_seconds", "Time per generated token after the first",
                                       ["model"], buckets=LATENCY_BUCKETS, registry=r)

    def watch(self, name, scheduler):
        self.batch.labels(name).set_function(lambda: scheduler.active_streams)
        self.queue.labels(name).set_function(lambda: scheduler.queued)
