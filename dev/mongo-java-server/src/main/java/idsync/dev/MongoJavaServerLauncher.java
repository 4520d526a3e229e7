package idsync.dev;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.BsonTimestamp;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.oplog.Oplog;
import de.bwaldvogel.mongo.oplog.OplogPosition;
import io.netty.channel.Channel;

import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Runs mongo-java-server (in-memory backend, oplog enabled so that change
 * streams work) until SIGTERM/SIGINT, for idsync's change-stream tests.
 * Test data only: nothing survives a restart.
 *
 * <p>Usage: {@code java -jar mongo-java-server-launcher.jar [host] [port]}
 * (defaults 127.0.0.1 27019).
 *
 * <p>Two small adjustments make current PyMongo work with it; both are in
 * {@link Backend} and described there.
 */
public final class MongoJavaServerLauncher {

    private MongoJavaServerLauncher() {
    }

    public static void main(String[] args) throws InterruptedException {
        String host = args.length > 0 ? args[0] : "127.0.0.1";
        int port = args.length > 1 ? Integer.parseInt(args[1]) : 27019;

        MongoServer server = new MongoServer(new Backend());
        server.enableOplog();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("mongo-java-server: shutting down");
            server.shutdownNow();
            stopped.countDown();
        }, "shutdown"));

        server.bind(host, port);
        System.err.println("mongo-java-server: listening on " + host + ":" + port
                + " (reporting MongoDB " + Backend.REPORTED_VERSION.toVersionString()
                + ", wire version " + Backend.REPORTED_VERSION.getWireVersion() + ")");
        stopped.await();
    }

    /**
     * The in-memory backend, with two adjustments for current drivers.
     *
     * <ol>
     * <li>Reported version. mongo-java-server 1.47.0 reports at most wire version 8,
     * but PyMongo 4.14 and later refuse any server below wire version 9 (MongoDB 4.4)
     * before sending a single command. We report 4.4 / wire 9, the lowest pair that
     * current drivers accept. Only the hello/buildInfo answer changes; what the
     * server can do is still whatever mongo-java-server implements.</li>
     * <li>{@code postBatchResumeToken}. A change-stream {@code aggregate} whose first
     * batch is empty gets no resume token and no {@code operationTime} from
     * mongo-java-server, and PyMongo's {@code watch()} then fails with "Expected field
     * 'operationTime' missing from command response". MongoDB 4.2 and later put a
     * {@code postBatchResumeToken} in every change-stream batch; we add one to such
     * an empty first batch: the position of the newest oplog entry, read before the
     * command runs, so resuming from it never skips an event (in a race it may
     * repeat one that happened just before the stream was opened). It has the same
     * form as the {@code _id} of an event, so {@code resumeAfter}/{@code startAfter}
     * accept it. {@code getMore} answers are left as they are.</li>
     * </ol>
     */
    static final class Backend extends MemoryBackend {

        static final MongoVersion REPORTED_VERSION = new MongoVersion() {
            @Override
            public List<Integer> getVersionArray() {
                return List.of(4, 4, 0);
            }

            @Override
            public int getWireVersion() {
                return 9;
            }
        };

        private volatile MongoCollection<?> oplogCollection;

        Backend() {
            version(REPORTED_VERSION);
        }

        @Override
        protected Oplog createOplog() {
            Oplog oplog = super.createOplog();
            MongoDatabase local = resolveDatabase("local");
            oplogCollection = local.resolveCollection("oplog.rs", false);
            return oplog;
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (!command.equalsIgnoreCase("aggregate") || !isChangeStream(query)) {
                return super.handleCommand(channel, databaseName, command, query);
            }
            String token = newestOplogPosition();
            Document response = super.handleCommand(channel, databaseName, command, query);
            Object cursor = response.get("cursor");
            if (token != null && cursor instanceof Document) {
                Document cursorDocument = (Document) cursor;
                Object firstBatch = cursorDocument.get("firstBatch");
                if (firstBatch instanceof List && ((List<?>) firstBatch).isEmpty()
                        && !cursorDocument.containsKey("postBatchResumeToken")) {
                    cursorDocument.put("postBatchResumeToken", new Document("_data", token));
                }
            }
            return response;
        }

        private static boolean isChangeStream(Document query) {
            Object pipeline = query.get("pipeline");
            if (!(pipeline instanceof List) || ((List<?>) pipeline).isEmpty()) {
                return false;
            }
            Object first = ((List<?>) pipeline).get(0);
            return first instanceof Document && ((Document) first).containsKey("$changeStream");
        }

        /** Hex position of the newest oplog entry (as in an event's _id), or null without an oplog. */
        private String newestOplogPosition() {
            MongoCollection<?> collection = oplogCollection;
            if (collection == null) {
                return null;
            }
            BsonTimestamp newest = collection.queryAllAsStream()
                    .map(document -> (BsonTimestamp) document.get("ts"))
                    .filter(ts -> ts != null)
                    .max(BsonTimestamp::compareTo)
                    .orElse(new BsonTimestamp(0L));
            return new OplogPosition(newest).toHexString();
        }
    }
}
