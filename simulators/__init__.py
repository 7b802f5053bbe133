"""The simulated fleet: air-quality stations, traffic counters and gateways that publish
SenML over MQTT as the city's devices do, with faults on demand."""
