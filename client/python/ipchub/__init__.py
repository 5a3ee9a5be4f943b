"""ipchub - Python client for the ipchub local message hub (PROTOCOL.md).

`ipchub.connect(...)` returns a blocking Hub (client.py), `await
ipchub.aio.connect(...)` an asyncio one (aio.py); errors are
ipchub.errors.IpchubError subclasses named by code.
"""

from . import aio, errors
from .client import Hub, Subscription, Watch, connect
from .core import Message, Publication, Sender
from .errors import IpchubError

__all__ = ["connect", "Hub", "Message", "Publication", "Sender", "Subscription", "Watch",
           "IpchubError", "aio", "errors"]
__version__ = "0.1.0"
