"""Mode S / ADS-B receiver: demodulator, frame checking, decoders, aircraft table."""
