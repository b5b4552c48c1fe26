/* 好差评: checks a rating's inclusion proof in the browser (ledger/templates/proof.html).

   From the content hash, the audit path leads to the block's Merkle root (node =
   SM3(0x01 || left || right)); the block header then gives the block root (SM3(0x02 ||
   height || prev_root || merkle_root || first_seq || entry_count || high_water ||
   sealed_at in microseconds || content_version), integers big-endian: 8 bytes each, the
   version 2), which must equal the published root. The algorithm is ledger/hashing.py's;
   SM3 is the vendored sm-crypto (static/vendor/sm3.js, global `sm3`). */
(function () {
  "use strict";
  var HEX64 = /^[0-9a-f]{64}$/;

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  function concat(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(size);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function node(left, right) {
    return window.sm3(concat([new Uint8Array([1]), hexToBytes(left), hexToBytes(right)]));
  }

  function blockRoot(form, merkleRoot) {
    var d = form.dataset;
    var ints = new DataView(new ArrayBuffer(34));
    ints.setBigUint64(0, BigInt(d.firstSeq));
    ints.setBigUint64(8, BigInt(d.entryCount));
    ints.setBigUint64(16, BigInt(d.highWater));
    ints.setBigInt64(24, BigInt(d.sealedAtUs));
    ints.setUint16(32, Number(d.contentVersion));
    var height = new DataView(new ArrayBuffer(8));
    height.setBigUint64(0, BigInt(d.height));
    return window.sm3(concat([
      new Uint8Array([2]),
      new Uint8Array(height.buffer),
      hexToBytes(d.prevRoot),
      hexToBytes(merkleRoot),
      new Uint8Array(ints.buffer)
    ]));
  }

  function line(list, text, hash) {
    var item = document.createElement("li");
    item.appendChild(document.createTextNode(text));
    if (hash) {
      var code = document.createElement("code");
      code.className = "hash";
      code.textContent = hash;
      item.appendChild(code);
    }
    list.appendChild(item);
  }

  function check(form, result) {
    var leaf = form.elements.leaf.value.trim().toLowerCase();
    var published = form.elements.root.value.trim().toLowerCase();
    result.textContent = "";
    result.className = "alert";
    var verdict = document.createElement("p");
    var steps = document.createElement("ol");
    if (!HEX64.test(leaf) || !HEX64.test(published)) {
      result.classList.add("alert--error");
      result.setAttribute("data-result", "invalid");
      verdict.textContent = "请填写 64 位十六进制的 SM3 哈希（0–9、a–f）。";
      result.appendChild(verdict);
      return;
    }
    var hash = leaf;
    var path = document.querySelectorAll("#audit-path li[data-hash]");
    path.forEach(function (step) {
      var sibling = step.getAttribute("data-hash");
      hash = step.getAttribute("data-side") === "left" ? node(sibling, hash) : node(hash, sibling);
    });
    line(steps, "由内容哈希沿 " + path.length + " 步审计路径算出的默克尔根：", hash);
    var root = blockRoot(form, hash);
    line(steps, "由区块头算出的区块根：", root);
    var ok = root === published;
    line(steps, ok ? "与公布的区块根一致。" : "与填写的区块根不一致。");
    result.classList.add(ok ? "alert--ok" : "alert--error");
    result.setAttribute("data-result", ok ? "pass" : "fail");
    verdict.textContent = ok
      ? "浏览器核对通过：这条评价在根哈希公布的区块中，封存后没有被改动。"
      : "浏览器核对未通过：算出的区块根与填写的根不符，内容哈希或根哈希有误，或数据已被改动。";
    result.appendChild(verdict);
    result.appendChild(steps);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("proof-form");
    var result = document.getElementById("pc-result");
    if (!form || !result || typeof window.sm3 !== "function" || typeof BigInt !== "function") return;
    var note = document.getElementById("browser-check-nojs");
    if (note) note.hidden = true;
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      check(form, result);
    });
    check(form, result);
  });
})();
