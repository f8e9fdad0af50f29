"""SMPP 3.4: our PDU codec (pdu), the ESME client (client), the provider (provider) and an
SMSC simulator (smsc) for tests, benchmarks and local runs."""
