// HitRatio — Caffeine's hit ratio on a request trace written by `cache_bench trace`, so that
// Caffeine and leakless::cache replay exactly the same keys (bench/run_cache_bench.sh runs both).
//
// How it works: the trace is a file of little-endian 64-bit keys, mapped and read as longs. For
// each cache size given, a fresh Caffeine cache bounded at that size replays the trace the
// cache-aside way: getIfPresent, and put on a miss. Maintenance (eviction, the frequency sketch,
// the window's hill climbing) is made synchronous: the executor runs tasks on the caller's thread,
// and cleanUp() after every put drains the read and write buffers, so no access is dropped and
// the cache never holds more than its bound. Hits are counted after the first WARMUP requests.
// Output: one line per size, "SIZE HIT_RATIO". Usage: java HitRatio TRACE WARMUP SIZE...
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;

public final class HitRatio {
  public static void main(String[] args) throws IOException {
    if (args.length < 3) {
      System.err.println("usage: java HitRatio TRACE WARMUP SIZE...");
      System.exit(2);
    }
    long[] keys;
    try (FileChannel ch = FileChannel.open(Paths.get(args[0]), StandardOpenOption.READ)) {
      LongBuffer buf =
          ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size())
              .order(ByteOrder.LITTLE_ENDIAN)
              .asLongBuffer();
      keys = new long[buf.remaining()];
      buf.get(keys);
    }
    int warmup = Integer.parseInt(args[1]);
    for (int a = 2; a < args.length; a++) {
      long size = Long.parseLong(args[a]);
      Cache<Long, Long> cache =
          Caffeine.newBuilder().maximumSize(size).executor(Runnable::run).build();
      long hits = 0;
      for (int i = 0; i < keys.length; i++) {
        Long key = keys[i];
        if (cache.getIfPresent(key) != null) {
          if (i >= warmup) hits++;
        } else {
          cache.put(key, key);
          cache.cleanUp();
        }
      }
      System.out.printf("%d %.6f%n", size, (double) hits / (keys.length - warmup));
    }
  }
}
