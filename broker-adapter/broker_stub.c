/* Placeholder until the NATS adapter lands; keeps the target non-empty. */
typedef int dt__broker_placeholder;
