"""A real `seqgen serve` process for the tests: on a free 127.0.0.1 port, healthy before it is
returned, always stopped (test_service.py, test_service_predict.py, test_page.py)."""

import os
import socket
import subprocess
import sys
import time

import httpx

TIMEOUT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args, key=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        cmd = [sys.executable, "-m", "seqgen", "serve", *args, "--port", str(self.port), "--log-level", "warning"]
        env = {k: v for k, v in os.environ.items() if k != "SEQGEN_API_KEY"}  # only what the test asks for
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")
            try:
                if httpx.get(self.url + "/health", headers=self.headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not become healthy in 120 s")

    def client(self):
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=TIMEOUT)

    def health(self, model="dinos"):
        return httpx.get(self.url + "/health", headers=self.headers, timeout=TIMEOUT).json()["models"][model]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
