from tests.campaigns.conftest import world  # noqa: F401
from tests.people.conftest import browsers, clock, signed_in  # noqa: F401
