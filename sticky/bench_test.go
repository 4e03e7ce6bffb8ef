package sticky

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkClassify(b *testing.B) {
	c := NewClassifier([]string{"/engine.io", "/socket.io/"})
	path := []byte("/socket.io/")
	query := []byte("EIO=4&transport=polling&t=OX8oqUE&sid=6Lbr.lv_VI97HAXpY6yYWAAAC")
	b.ReportAllocs()
	for b.Loop() {
		if info := c.Classify(path, query, false); info.SID == nil {
			b.Fatal("no sid")
		}
	}
}

func BenchmarkSplitTagged(b *testing.B) {
	sid := []byte("6Lbr.lv_VI97HAXpY6yYWAAAC")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := SplitTagged(sid); !ok {
			b.Fatal("not tagged")
		}
	}
}

func BenchmarkRewriteHandshakeV4(b *testing.B) {
	body := []byte(v4Open)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := RewriteHandshake(dst[:0], body, "6Lb"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTable returns a table holding n sessions and their keys.
func benchTable(n int) (*Table, [][]byte) {
	tab := NewTable(time.Now, nil)
	keys := make([][]byte, n)
	for i := range keys {
		sid := "sid-" + strconv.Itoa(i) + "-lv_VI97HAXpY6yYWAAAC"
		keys[i] = []byte(sid)
		tab.PutIfAbsent(sid, "backend-"+strconv.Itoa(i%8), time.Hour)
	}
	return tab, keys
}

func BenchmarkTableGetParallel(b *testing.B) {
	tab, keys := benchTable(100_000)
	var seed atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(7919))
		for pb.Next() {
			if _, ok := tab.Get(keys[i%len(keys)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

func BenchmarkTablePut(b *testing.B) {
	sids := make([]string, 1<<16)
	for i := range sids {
		sids[i] = "sid-" + strconv.Itoa(i) + "-lv_VI97HAXpY6yYWAAAC"
	}
	b.Run("refresh", func(b *testing.B) {
		tab, _ := benchTable(0)
		for _, sid := range sids {
			tab.PutIfAbsent(sid, "backend-1", time.Hour)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tab.PutIfAbsent(sids[i&(len(sids)-1)], "backend-1", time.Hour)
			i++
		}
	})
	b.Run("insert+delete", func(b *testing.B) {
		tab, _ := benchTable(10_000)
		key := []byte(sids[0])
		b.ReportAllocs()
		for b.Loop() {
			tab.PutIfAbsent(sids[0], "backend-1", time.Hour)
			tab.Delete(key)
		}
	})
}
