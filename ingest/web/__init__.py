"""``mechtrade serve``: the live chart page with hand labelling (aiohttp, lightweight-charts)."""
