#!/usr/bin/env python3
"""A WebSub subscriber made with flask-websub (a third-party implementation, from PyPI), driven
by tests/it/websub_flask.rs over standard input and output, one command per line:

  subscribe FEED_URL   discover the hub and topic from FEED_URL, subscribe, wait for the
                       verification; prints "subscribed TOPIC"
  wait TEXT            wait for a notification whose body contains TEXT; prints "notified N"
                       (N: notifications so far)
  count                prints "count N"
  unsubscribe          unsubscribe, wait for the verification; prints "unsubscribed"
  quit

flask-websub sends a secret only to an https hub (NO_SECRET_WITH_HTTP), so this subscriber uses
none; the Rust tests check clipfeed's signatures with an HMAC of their own.
"""

import logging
import sys
import tempfile
import threading
import time

from flask import Flask
from werkzeug.serving import make_server
from flask_websub.subscriber import (Subscriber, SQLite3SubscriberStorage,
                                     SQLite3TempSubscriberStorage, discover)

DEADLINE = 30


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp()
    app = Flask(__name__)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["SERVER_NAME"] = "127.0.0.1:%d" % server.server_port
    subscriber = Subscriber(SQLite3SubscriberStorage(tmp + "/subs.sqlite"),
                            SQLite3TempSubscriberStorage(tmp + "/temp.sqlite"))
    app.register_blueprint(subscriber.build_blueprint(url_prefix="/callbacks"))

    cond = threading.Condition()
    state = {"bodies": [], "modes": [], "errors": []}

    def on_body(topic, callback_id, body):
        with cond:
            state["bodies"].append(body.decode("utf-8", "replace"))
            cond.notify_all()

    def on_success(topic, callback_id, mode):
        with cond:
            state["modes"].append(mode)
            cond.notify_all()

    def on_error(topic, callback_id, reason):
        with cond:
            state["errors"].append(reason)
            cond.notify_all()

    subscriber.add_listener(on_body)
    subscriber.add_success_handler(on_success)
    subscriber.add_error_handler(on_error)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def until(what, test):
        end = time.monotonic() + DEADLINE
        with cond:
            while not test():
                left = end - time.monotonic()
                if left <= 0:
                    print("timeout " + what, flush=True)
                    sys.exit(1)
                cond.wait(left)

    callback_id = None
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "subscribe":
            with app.app_context():
                found = discover(arg)
                callback_id = subscriber.subscribe(**found)
            until("verification", lambda: "subscribe" in state["modes"])
            print("subscribed " + found["topic_url"], flush=True)
        elif cmd == "wait":
            until("notification", lambda: any(arg in b for b in state["bodies"]))
            print("notified %d" % len(state["bodies"]), flush=True)
        elif cmd == "count":
            with cond:
                print("count %d" % len(state["bodies"]), flush=True)
        elif cmd == "unsubscribe":
            with app.app_context():
                subscriber.unsubscribe(callback_id)
            until("unsubscribe verification", lambda: "unsubscribe" in state["modes"])
            print("unsubscribed", flush=True)
        elif cmd == "quit":
            break
    server.shutdown()


if __name__ == "__main__":
    main()
