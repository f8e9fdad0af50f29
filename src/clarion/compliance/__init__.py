"""The account's compliance settings (sending hours, frequency cap, consent, inbound
keywords) and the pure rules that apply them to a recipient at a given instant."""
