#!/usr/bin/python3
"""RTSP test server for vidinfer's integration tests (GStreamer's gst-rtsp-server).

Serves one H.264 file (.mp4/.mov, .mkv or .ts; make one with
`ffmpeg -i in -c:v libx264 -bf 0 -g 10 -pix_fmt yuv420p -an clip.mp4`) as
rtsp://127.0.0.1:PORT/PATH, at real-time pace, over RTP/TCP-interleaved and RTP/UDP.

  /usr/bin/python3 tests/servers/rtsp_server.py [options] MEDIA

  MEDIA              the H.264 file to serve (no re-encoding is done)
  --port N           TCP port for RTSP on 127.0.0.1; 0 (default) = any free port
  --path P           mount point (default /stream)
  --max-seconds S    the server exits by itself after S seconds (default 120)
  --protocols LIST   comma list of tcp,udp (default tcp,udp): the lower transports offered
  --bind-retry S     keep retrying the bind for up to S seconds (default 5): a restarted
                     server can take back the port its killed predecessor held

Once listening it prints exactly one line on stdout and flushes it:
  LISTENING port=N url=rtsp://127.0.0.1:N/stream
Failures print `rtsp_server: ...` on stderr and exit 1 (2 for bad arguments).

There is no loop option: gst-rtsp-server cannot loop a file by itself (a raw .h264 looped by
multifilesrc has no timestamps and is sent in a burst). For long runs serve a longer file,
made without re-encoding: `ffmpeg -stream_loop 59 -i clip.mp4 -c copy long.mp4`.

Each client gets its own pipeline (the factory is not shared), so every session starts at
the file's first frame. The session ends at the end of the file: the server
sends RTCP BYE, which FFmpeg's RTSP demuxer takes as end of stream (AVERROR_EOF).
Runs with the system python (/usr/bin/python3) because python3-gi is a Debian package.
"""
import argparse
import os
import signal
import sys
import threading


def die(msg, code=1):
    sys.stderr.write(f"rtsp_server: {msg}\n")
    sys.stderr.flush()
    os._exit(code)


def main():
    ap = argparse.ArgumentParser(description="RTSP test server (127.0.0.1 only)")
    ap.add_argument("media")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--path", default="/stream")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--protocols", default="tcp,udp")
    ap.add_argument("--bind-retry", type=float, default=5.0)
    a = ap.parse_args()

    # The hard deadline first: whatever happens below, this process ends.
    t = threading.Timer(a.max_seconds, lambda: die(f"--max-seconds {a.max_seconds} reached", 0))
    t.daemon = True
    t.start()

    media = os.path.abspath(a.media)
    if not os.path.isfile(media):
        die(f"no such media file: {media}", 2)
    if not a.path.startswith("/"):
        die("--path must start with /", 2)

    try:
        import gi
        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtsp", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    except (ImportError, ValueError) as e:
        die(f"python3-gi / gir1.2-gst-rtsp-server-1.0 missing ({e}): run tools/setup")

    Gst.init(None)
    ext = os.path.splitext(media)[1].lower()
    demux = {".mp4": "qtdemux", ".mov": "qtdemux", ".mkv": "matroskademux", ".ts": "tsdemux"}.get(ext)
    if demux is None:
        die(f"unsupported container {ext!r}: use .mp4, .mov, .mkv or .ts", 2)
    src = f'filesrc location="{media}" ! {demux} ! h264parse'
    for el in ("filesrc", demux, "h264parse", "rtph264pay"):
        if Gst.ElementFactory.find(el) is None:
            die(f"GStreamer element {el} missing (gstreamer1.0-plugins-base/good/bad): run tools/setup")

    launch = f"( {src} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(False)
    protos = GstRtsp.RTSPLowerTrans(0)
    for p in a.protocols.split(","):
        p = p.strip().lower()
        if p == "tcp":
            protos |= GstRtsp.RTSPLowerTrans.TCP
        elif p == "udp":
            protos |= GstRtsp.RTSPLowerTrans.UDP
        else:
            die(f"--protocols: unknown {p!r} (tcp, udp)", 2)
    factory.set_protocols(protos)
    # UDP transport: RTP/RTCP ports for the server's side, on 127.0.0.1.
    pool = GstRtspServer.RTSPAddressPool()
    # A random start, so that servers running side by side do not all probe the same ports
    # first (a busy pair is skipped anyway).
    import random
    base = random.randrange(20000, 59000, 2)
    pool.add_range("127.0.0.1", "127.0.0.1", base, base + 1000, 0)
    factory.set_address_pool(pool)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    server.get_mount_points().add_factory(a.path, factory)

    loop = GLib.MainLoop()
    deadline = GLib.get_monotonic_time() + int(a.bind_retry * 1e6)
    while True:
        try:
            # create_source binds (with SO_REUSEADDR, which GStreamer sets) and listens.
            source = server.create_source(None)
            source.attach(None)
            break
        except GLib.Error as e:
            if GLib.get_monotonic_time() > deadline:
                die(f"cannot listen on 127.0.0.1:{a.port}: {e.message}")
            import time
            time.sleep(0.1)
    port = server.get_bound_port()
    print(f"LISTENING port={port} url=rtsp://127.0.0.1:{port}{a.path}", flush=True)

    # SIGTERM/SIGKILL keep their default action (end the process); SIGINT too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    GLib.timeout_add(int(a.max_seconds * 1000), lambda: loop.quit())
    loop.run()
    os._exit(0)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # never linger: the deadline timer is a daemon thread
        import traceback
        traceback.print_exc()
        die(f"{type(e).__name__}: {e}")
