"""The shared text toolkit every stage uses on what publishers write.

urls.py         canonical links: tracking parameters, redirectors, local hosts
sanitize.py     the HTML allow-list (the last transform of item HTML) and HTML -> text
boilerplate.py  publishers' footers and sites' own disclaimers, found and cut
"""
