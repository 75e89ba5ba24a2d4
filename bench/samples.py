"""Inputs shared by the micro benchmarks."""

# A realistic browser request: 9 headers, ~450 bytes, as Chrome sends it.
BROWSER_REQUEST = (
    b"GET /products/42/reviews?page=2 HTTP/1.1\r\n"
    b"Host: www.example-shop.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example-shop.com/\r\n"
    b"Cookie: session=8f2c1e9a; cart=3\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)

# 20-byte keys, as a client address plus port would be.
HASH_KEYS = [
    f"198.51.{i >> 8 & 255:03d}.{i & 255:03d}:{40000 + i:05d}".encode() for i in range(4096)
]

BACKENDS_100 = [f"10.0.{i // 250}.{i % 250 + 1}:8080" for i in range(100)]
