"""dripcourse core: content model, learner state, pacing maths, rendering and use cases.

Nothing here imports a chat SDK, opens a database or reads configuration at import time.
"""
