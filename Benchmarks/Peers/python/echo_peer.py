"""The echo topic's Python peer: asyncio's echo server, on one thread (the asyncio docs' streams
echo server, with TCP_NODELAY as Fleet's servers set it).

Prints "port<TAB>N" once listening on 127.0.0.1 (port chosen by the system), then serves until
killed. `Benchmarks/Peers/run` points `fleet bench echo --peer asyncio:N` at it, so the same
native load generator measures it in the same rounds as Fleet's, the C epoll and the SwiftNIO
servers.
"""

import asyncio
import socket
import sys


async def handle(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(1024)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    port = server.sockets[0].getsockname()[1]
    print("port\t%d" % port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
