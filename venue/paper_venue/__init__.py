"""A paper venue that speaks the subset of Alpaca's API the Alpaca adapter uses.

It runs as its own process (``paper-venue``, or ``python -m paper_venue``) or inside a test
(``VenueServer``), backed by the simulated exchange core, so anything that
speaks Alpaca can trade against it without an account.
"""

from paper_venue.app import VenueServer, create_app
from paper_venue.book import PaperVenue
from paper_venue.config import Faults, VenueAccount, VenueConfig

__all__ = ["Faults", "PaperVenue", "VenueAccount", "VenueConfig", "VenueServer", "create_app"]
