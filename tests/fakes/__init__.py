"""Fakes of the services across the network, each a real server speaking that service's protocol."""
