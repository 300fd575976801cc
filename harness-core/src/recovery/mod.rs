//! Recovery machinery: backoff, retry budget, deadlines, circuit breaker, rate and concurrency limits.
