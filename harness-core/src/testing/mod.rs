//! Test support: the chaos server (an OpenAI-compatible server on 127.0.0.1 that injects faults).
