"""An SFTP server with the semantics of AWS Transfer Family on Amazon S3, for tests (Debian's
python3-asyncssh; started by sftp-objectstore.ts as the non-root test account).

What Transfer on S3 does, and so this server:
- SFTP version 3 only, names in UTF-8:
  https://docs.aws.amazon.com/transfer/latest/userguide/transfer-file.html
- The user's home is a logical root ('/' is the user's folder), as a service-managed user with a
  logical home directory mapping: https://docs.aws.amazon.com/transfer/latest/userguide/logical-dir-mappings.html
- An upload becomes an S3 object: nothing is visible under its name until the upload completes, then
  the whole object at once (S3 PUT/CompleteMultipartUpload are atomic; a reader keeps the version it
  opened): https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel
  So writes go to a staging file outside the served folder and replace the target on close.
- Objects cannot be changed in place or appended to (S3 PutObject replaces the whole object), so
  read-write and append opens are refused.
- mtime is the upload time (S3 LastModified); SETSTAT fails unless the server's SetStatOption is
  ENABLE_NO_OP: https://docs.aws.amazon.com/transfer/latest/userguide/API_ProtocolDetails.html
- Rename is refused (SSH_FX_OP_UNSUPPORTED), as on an object store without an atomic rename: the
  strictest behaviour a client must survive.

usage: sftp-objectstore.py PORT ROOT STAGING AUTHORIZED_KEYS USER HOSTKEY...
SIGUSR1 drops every live session (the listener stays up); SIGTERM stops the server.
"""

import asyncio
import os
import signal
import sys
import time

import asyncssh
from asyncssh import FXF_APPEND, FXF_EXCL, FXF_READ, FXF_WRITE

PORT, ROOT, STAGING, AUTHORIZED, USER = sys.argv[1:6]
HOST_KEYS = sys.argv[6:]
sessions = set()


class Upload:
    """An SFTP write handle: bytes go to a staging file; the object appears on close."""

    def __init__(self, target: str):
        self.target = target
        fd, self.staging = _mkstemp()
        self.file = os.fdopen(fd, 'r+b', buffering=0)

    def publish(self):
        self.file.close()
        now = time.time()
        os.utime(self.staging, (now, now))  # mtime = upload (completion) time, as S3 LastModified
        os.makedirs(os.path.dirname(self.target), exist_ok=True)
        os.replace(self.staging, self.target)


_counter = 0


def _mkstemp():
    global _counter
    _counter += 1
    path = os.path.join(STAGING, f'{os.getpid()}-{_counter}')
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), path


class ObjectStoreSFTP(asyncssh.SFTPServer):
    def __init__(self, chan):
        super().__init__(chan, chroot=ROOT.encode())

    def _local(self, path: bytes) -> str:
        return os.fsdecode(self.map_path(path))

    def open(self, path, pflags, attrs):
        if not pflags & FXF_WRITE:
            return super().open(path, pflags, attrs)
        if pflags & FXF_READ or pflags & FXF_APPEND:
            raise asyncssh.SFTPOpUnsupported('objects cannot be changed in place or appended to')
        target = self._local(path)
        if pflags & FXF_EXCL and os.path.exists(target):
            raise asyncssh.SFTPFailure('file exists')
        return Upload(target)

    def close(self, file_obj):
        if isinstance(file_obj, Upload):
            file_obj.publish()
        else:
            super().close(file_obj)

    def read(self, file_obj, offset, size):
        if isinstance(file_obj, Upload):
            raise asyncssh.SFTPPermissionDenied('upload handles are write-only')
        return super().read(file_obj, offset, size)

    def write(self, file_obj, offset, data):
        file_obj.file.seek(offset)
        return file_obj.file.write(data)

    def fstat(self, file_obj):
        return os.fstat(file_obj.file.fileno() if isinstance(file_obj, Upload) else file_obj.fileno())

    def setstat(self, path, attrs):
        raise asyncssh.SFTPOpUnsupported('SETSTAT is not supported on an object store')

    def fsetstat(self, file_obj, attrs):
        raise asyncssh.SFTPOpUnsupported('SETSTAT is not supported on an object store')

    def rename(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('rename is not supported on an object store')

    def posix_rename(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('rename is not supported on an object store')

    def symlink(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('symbolic links are not supported on an object store')

    def link(self, oldpath, newpath):
        raise asyncssh.SFTPOpUnsupported('hard links are not supported on an object store')


class Server(asyncssh.SSHServer):
    def connection_made(self, conn):
        self.conn = conn
        sessions.add(conn)

    def connection_lost(self, exc):
        sessions.discard(self.conn)

    def begin_auth(self, username):
        # Public keys only, and only for the one user: other names get no authorized keys at all.
        if username == USER:
            self.conn.set_authorized_keys(AUTHORIZED)
        return True

    def password_auth_supported(self):
        return False


def drop_sessions():
    for conn in list(sessions):
        conn.abort()


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, drop_sessions)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    server = await asyncssh.listen(
        '127.0.0.1',
        int(PORT),
        server_factory=Server,
        server_host_keys=HOST_KEYS,
        sftp_factory=ObjectStoreSFTP,
        allow_scp=False,
    )
    print('LISTENING', PORT, flush=True)
    await stop
    server.close()
    drop_sessions()


asyncio.run(main())
