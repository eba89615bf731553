"""A paper venue that speaks the subset of Alpaca's API the Alpaca adapter uses.

It runs as its own process (``python -m gateway.venue``) or inside a test
(``VenueServer``), backed by the simulated exchange core, so anything that
speaks Alpaca can trade against it without an account.
"""

from gateway.venue.app import VenueServer, create_app
from gateway.venue.book import PaperVenue
from gateway.venue.config import Faults, VenueAccount, VenueConfig

__all__ = ["Faults", "PaperVenue", "VenueAccount", "VenueConfig", "VenueServer", "create_app"]
