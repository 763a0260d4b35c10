// bubble-js bundled for browsers: generated from bubble-js/src by `npm run bundle`; do not edit.
// Includes @bufbuild/protobuf 2.17.0, Copyright 2021-2026 Buf Technologies, Inc. (license: (Apache-2.0 AND BSD-3-Clause)).

// node_modules/@bufbuild/protobuf/dist/esm/is-message.js
function isMessage(arg, schema) {
  const isMessage2 = arg !== null && typeof arg == "object" && "$typeName" in arg && typeof arg.$typeName == "string";
  if (!isMessage2) {
    return false;
  }
  if (schema === void 0) {
    return true;
  }
  return schema.typeName === arg.$typeName;
}

// node_modules/@bufbuild/protobuf/dist/esm/descriptors.js
var ScalarType;
(function(ScalarType2) {
  ScalarType2[ScalarType2["DOUBLE"] = 1] = "DOUBLE";
  ScalarType2[ScalarType2["FLOAT"] = 2] = "FLOAT";
  ScalarType2[ScalarType2["INT64"] = 3] = "INT64";
  ScalarType2[ScalarType2["UINT64"] = 4] = "UINT64";
  ScalarType2[ScalarType2["INT32"] = 5] = "INT32";
  ScalarType2[ScalarType2["FIXED64"] = 6] = "FIXED64";
  ScalarType2[ScalarType2["FIXED32"] = 7] = "FIXED32";
  ScalarType2[ScalarType2["BOOL"] = 8] = "BOOL";
  ScalarType2[ScalarType2["STRING"] = 9] = "STRING";
  ScalarType2[ScalarType2["BYTES"] = 12] = "BYTES";
  ScalarType2[ScalarType2["UINT32"] = 13] = "UINT32";
  ScalarType2[ScalarType2["SFIXED32"] = 15] = "SFIXED32";
  ScalarType2[ScalarType2["SFIXED64"] = 16] = "SFIXED64";
  ScalarType2[ScalarType2["SINT32"] = 17] = "SINT32";
  ScalarType2[ScalarType2["SINT64"] = 18] = "SINT64";
})(ScalarType || (ScalarType = {}));

// node_modules/@bufbuild/protobuf/dist/esm/wire/varint.js
function varint64read() {
  const buf2 = this.buf;
  let pos = this.pos;
  let lo = 0;
  let hi = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    const b = buf2[pos++];
    lo |= (b & 127) << shift;
    if ((b & 128) == 0) {
      this.pos = pos;
      this.assertBounds();
      this.varint64Lo = lo;
      this.varint64Hi = hi;
      return;
    }
  }
  const middleByte = buf2[pos++];
  lo |= (middleByte & 15) << 28;
  hi = (middleByte & 112) >> 4;
  if ((middleByte & 128) == 0) {
    this.pos = pos;
    this.assertBounds();
    this.varint64Lo = lo;
    this.varint64Hi = hi;
    return;
  }
  for (let shift = 3; shift <= 31; shift += 7) {
    const b = buf2[pos++];
    hi |= (b & 127) << shift;
    if ((b & 128) == 0) {
      this.pos = pos;
      this.assertBounds();
      this.varint64Lo = lo;
      this.varint64Hi = hi;
      return;
    }
  }
  throw new Error("invalid varint");
}
var TWO_PWR_32_DBL = 4294967296;
function int64FromString(dec) {
  const minus = dec[0] === "-";
  if (minus) {
    dec = dec.slice(1);
  }
  const base = 1e6;
  let lowBits = 0;
  let highBits = 0;
  function add1e6digit(begin, end) {
    const digit1e6 = Number(dec.slice(begin, end));
    highBits *= base;
    lowBits = lowBits * base + digit1e6;
    if (lowBits >= TWO_PWR_32_DBL) {
      highBits = highBits + (lowBits / TWO_PWR_32_DBL | 0);
      lowBits = lowBits % TWO_PWR_32_DBL;
    }
  }
  add1e6digit(-24, -18);
  add1e6digit(-18, -12);
  add1e6digit(-12, -6);
  add1e6digit(-6);
  return minus ? negate(lowBits, highBits) : newBits(lowBits, highBits);
}
function int64ToString(lo, hi) {
  let bits = newBits(lo, hi);
  const negative = bits.hi & 2147483648;
  if (negative) {
    bits = negate(bits.lo, bits.hi);
  }
  const result = uInt64ToString(bits.lo, bits.hi);
  return negative ? "-" + result : result;
}
function uInt64ToString(lo, hi) {
  ({ lo, hi } = toUnsigned(lo, hi));
  if (hi <= 2097151) {
    return String(TWO_PWR_32_DBL * hi + lo);
  }
  const low = lo & 16777215;
  const mid = (lo >>> 24 | hi << 8) & 16777215;
  const high = hi >> 16 & 65535;
  let digitA = low + mid * 6777216 + high * 6710656;
  let digitB = mid + high * 8147497;
  let digitC = high * 2;
  const base = 1e7;
  if (digitA >= base) {
    digitB += Math.floor(digitA / base);
    digitA %= base;
  }
  if (digitB >= base) {
    digitC += Math.floor(digitB / base);
    digitB %= base;
  }
  return digitC.toString() + decimalFrom1e7WithLeadingZeros(digitB) + decimalFrom1e7WithLeadingZeros(digitA);
}
function toUnsigned(lo, hi) {
  return { lo: lo >>> 0, hi: hi >>> 0 };
}
function newBits(lo, hi) {
  return { lo: lo | 0, hi: hi | 0 };
}
function negate(lowBits, highBits) {
  highBits = ~highBits;
  if (lowBits) {
    lowBits = ~lowBits + 1;
  } else {
    highBits += 1;
  }
  return newBits(lowBits, highBits);
}
var decimalFrom1e7WithLeadingZeros = (digit1e7) => {
  const partial = String(digit1e7);
  return "0000000".slice(partial.length) + partial;
};
function varint32write(value, bytes) {
  if (value >>> 0 < 128) {
    bytes.push(value);
    return;
  }
  if (value >= 0) {
    while (value > 127) {
      bytes.push(value & 127 | 128);
      value = value >>> 7;
    }
    bytes.push(value);
  } else {
    for (let i = 0; i < 9; i++) {
      bytes.push(value & 127 | 128);
      value = value >> 7;
    }
    bytes.push(1);
  }
}
function varint32read() {
  let b = this.buf[this.pos++];
  if ((b & 128) === 0) {
    this.assertBounds();
    return b;
  }
  let result = b & 127;
  b = this.buf[this.pos++];
  result |= (b & 127) << 7;
  if ((b & 128) === 0) {
    this.assertBounds();
    return result;
  }
  b = this.buf[this.pos++];
  result |= (b & 127) << 14;
  if ((b & 128) === 0) {
    this.assertBounds();
    return result;
  }
  b = this.buf[this.pos++];
  result |= (b & 127) << 21;
  if ((b & 128) === 0) {
    this.assertBounds();
    return result;
  }
  b = this.buf[this.pos++];
  result |= (b & 15) << 28;
  for (let readBytes = 5; (b & 128) !== 0 && readBytes < 10; readBytes++)
    b = this.buf[this.pos++];
  if ((b & 128) !== 0)
    throw new Error("invalid varint");
  this.assertBounds();
  return result >>> 0;
}

// node_modules/@bufbuild/protobuf/dist/esm/proto-int64.js
var protoInt64 = /* @__PURE__ */ makeInt64Support();
function makeInt64Support() {
  const dv = new DataView(new ArrayBuffer(8));
  const ok = typeof BigInt === "function" && typeof dv.getBigInt64 === "function" && typeof dv.getBigUint64 === "function" && typeof dv.setBigInt64 === "function" && typeof dv.setBigUint64 === "function" && (!!globalThis.Deno || !!globalThis.Bun || typeof process != "object" || typeof process.env != "object" || process.env.BUF_BIGINT_DISABLE !== "1");
  if (ok) {
    const MIN = BigInt("-9223372036854775808");
    const MAX = BigInt("9223372036854775807");
    const UMIN = BigInt("0");
    const UMAX = BigInt("18446744073709551615");
    return {
      zero: BigInt(0),
      supported: true,
      parse(value) {
        const bi = typeof value == "bigint" ? value : BigInt(value);
        if (bi > MAX || bi < MIN) {
          throw new Error(`invalid int64: ${value}`);
        }
        return bi;
      },
      uParse(value) {
        const bi = typeof value == "bigint" ? value : BigInt(value);
        if (bi > UMAX || bi < UMIN) {
          throw new Error(`invalid uint64: ${value}`);
        }
        return bi;
      },
      enc(value) {
        dv.setBigInt64(0, this.parse(value), true);
        return {
          lo: dv.getInt32(0, true),
          hi: dv.getInt32(4, true)
        };
      },
      uEnc(value) {
        dv.setBigInt64(0, this.uParse(value), true);
        return {
          lo: dv.getInt32(0, true),
          hi: dv.getInt32(4, true)
        };
      },
      dec(lo, hi) {
        dv.setInt32(0, lo, true);
        dv.setInt32(4, hi, true);
        return dv.getBigInt64(0, true);
      },
      uDec(lo, hi) {
        dv.setInt32(0, lo, true);
        dv.setInt32(4, hi, true);
        return dv.getBigUint64(0, true);
      }
    };
  }
  return {
    zero: "0",
    supported: false,
    parse(value) {
      if (typeof value != "string") {
        value = value.toString();
      }
      assertInt64String(value);
      return value;
    },
    uParse(value) {
      if (typeof value != "string") {
        value = value.toString();
      }
      assertUInt64String(value);
      return value;
    },
    enc(value) {
      if (typeof value != "string") {
        value = value.toString();
      }
      assertInt64String(value);
      return int64FromString(value);
    },
    uEnc(value) {
      if (typeof value != "string") {
        value = value.toString();
      }
      assertUInt64String(value);
      return int64FromString(value);
    },
    dec(lo, hi) {
      return int64ToString(lo, hi);
    },
    uDec(lo, hi) {
      return uInt64ToString(lo, hi);
    }
  };
}
function assertInt64String(value) {
  if (!/^-?[0-9]+$/.test(value)) {
    throw new Error("invalid int64: " + value);
  }
}
function assertUInt64String(value) {
  if (!/^[0-9]+$/.test(value)) {
    throw new Error("invalid uint64: " + value);
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/scalar.js
function scalarZeroValue(type, longAsString) {
  switch (type) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 0;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SFIXED64:
    case ScalarType.FIXED64:
    case ScalarType.SINT64:
      return longAsString ? "0" : protoInt64.zero;
    case ScalarType.BYTES:
      return new Uint8Array(0);
    default:
      return 0;
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/unsafe.js
function unsafeIsSetExplicit(target, localName) {
  return Object.prototype.hasOwnProperty.call(target, localName) && target[localName] !== void 0;
}
function setOwn(obj, key, value) {
  if (key === "__proto__") {
    Object.defineProperty(obj, "__proto__", {
      value,
      writable: true,
      enumerable: true,
      configurable: true
    });
  } else {
    obj[key] = value;
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/guard.js
function isObject(arg) {
  return arg !== null && typeof arg == "object" && !Array.isArray(arg);
}

// node_modules/@bufbuild/protobuf/dist/esm/wkt/wrappers.js
function isWrapperDesc(messageDesc2) {
  const f = messageDesc2.fields[0];
  return isWrapperTypeName(messageDesc2.typeName) && f !== void 0 && f.fieldKind == "scalar" && f.name == "value" && f.number == 1;
}
var wrapperTypeNames = /* @__PURE__ */ new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue"
]);
function isWrapperTypeName(name) {
  return wrapperTypeNames.has(name);
}

// node_modules/@bufbuild/protobuf/dist/esm/create.js
var EDITION_PROTO3 = 999;
var EDITION_PROTO2 = 998;
var IMPLICIT = 2;
function create(schema, init) {
  if (isMessage(init, schema)) {
    return init;
  }
  return compiledCreate(schema)(init);
}
var compiledCreates = /* @__PURE__ */ new WeakMap();
function compiledCreate(desc) {
  let compiled = compiledCreates.get(desc);
  if (compiled === void 0) {
    compiled = compileCreate(desc);
    compiledCreates.set(desc, compiled);
  }
  return compiled;
}
var INIT_SINGULAR = 0;
var INIT_LIST = 1;
var INIT_MAP = 2;
var INIT_ONEOF = 3;
function compileCreate(desc) {
  const typeName = desc.typeName;
  const { properties, prototype } = compileInitMessage(desc);
  return (init) => {
    let message;
    if (prototype !== void 0) {
      message = Object.create(prototype);
      message.$typeName = typeName;
    } else {
      message = { $typeName: typeName };
    }
    for (let i = 0; i < properties.length; i++) {
      const property = properties[i];
      const name = property.name;
      const initValue = init === null || init === void 0 ? void 0 : init[name];
      switch (property.kind) {
        case INIT_SINGULAR:
          if (initValue != null) {
            message[name] = property.convert !== void 0 ? property.convert(initValue) : initValue;
          } else if (property.constant !== void 0) {
            message[name] = property.constant;
          }
          break;
        case INIT_LIST:
          message[name] = property.convert !== void 0 && Array.isArray(initValue) ? initValue.map(property.convert) : initValue !== null && initValue !== void 0 ? initValue : [];
          break;
        case INIT_MAP:
          if (property.convert === void 0 || !isObject(initValue)) {
            message[name] = initValue !== null && initValue !== void 0 ? initValue : {};
          } else {
            const converted = {};
            const keys = Object.keys(initValue);
            for (let k = 0; k < keys.length; k++) {
              setOwn(converted, keys[k], property.convert(initValue[keys[k]]));
            }
            message[name] = converted;
          }
          break;
        case INIT_ONEOF: {
          const oneofValue = initValue;
          if ((oneofValue === null || oneofValue === void 0 ? void 0 : oneofValue.case) != null) {
            const convert = property.convert.get(oneofValue.case);
            if (convert !== void 0) {
              message[name] = {
                case: oneofValue.case,
                value: convert(oneofValue.value)
              };
              break;
            }
          }
          message[name] = { case: void 0 };
          break;
        }
      }
    }
    return message;
  };
}
function compileInitMessage(desc) {
  var _a, _b;
  const properties = [];
  const prototype = {};
  const usePrototype = needsPrototypeChain(desc);
  for (const member of desc.members) {
    const name = member.localName;
    if (member.kind == "oneof") {
      properties.push({
        name,
        kind: INIT_ONEOF,
        constant: void 0,
        convert: compileConvertOneof(member)
      });
      continue;
    }
    switch (member.fieldKind) {
      case "message": {
        properties.push({
          name,
          kind: INIT_SINGULAR,
          constant: void 0,
          convert: compileConvertMessage(member)
        });
        break;
      }
      case "list": {
        properties.push({
          name,
          kind: INIT_LIST,
          constant: void 0,
          convert: member.listKind == "message" ? (_a = compileConvertMessage(member)) !== null && _a !== void 0 ? _a : ((value) => value) : member.scalar == ScalarType.BYTES ? toU8Arr : void 0
        });
        break;
      }
      case "map": {
        properties.push({
          name,
          kind: INIT_MAP,
          constant: void 0,
          convert: member.mapKind == "message" ? (_b = compileConvertMessage(member)) !== null && _b !== void 0 ? _b : ((value) => value) : member.scalar == ScalarType.BYTES ? toU8Arr : void 0
        });
        break;
      }
      default: {
        const zeroValue = createZeroValue(member);
        properties.push({
          name,
          kind: INIT_SINGULAR,
          constant: member.presence == IMPLICIT ? zeroValue : void 0,
          convert: member.fieldKind == "scalar" && member.scalar == ScalarType.BYTES ? toU8Arr : void 0
        });
        if (usePrototype) {
          prototype[name] = zeroValue;
        }
        break;
      }
    }
  }
  return {
    properties,
    prototype: usePrototype ? prototype : void 0
  };
}
function compileConvertOneof(oneof) {
  const converters = /* @__PURE__ */ new Map();
  for (const field of oneof.fields) {
    let convert;
    if (field.fieldKind == "message") {
      convert = compileConvertMessage(field);
    } else if (field.fieldKind == "scalar" && field.scalar == ScalarType.BYTES) {
      convert = toU8Arr;
    }
    converters.set(field.localName, convert !== null && convert !== void 0 ? convert : ((value) => value));
  }
  return converters;
}
function compileConvertMessage(field) {
  if (field.fieldKind == "message" && !field.oneof && isWrapperDesc(field.message)) {
    return field.message.fields[0].scalar == ScalarType.BYTES ? toU8Arr : void 0;
  }
  if (field.message.typeName == "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") {
    return void 0;
  }
  const messageDesc2 = field.message;
  let compiled;
  return (value) => {
    if (!isObject(value) || isMessage(value, messageDesc2)) {
      return value;
    }
    compiled !== null && compiled !== void 0 ? compiled : compiled = compiledCreate(messageDesc2);
    return compiled(value);
  };
}
function toU8Arr(value) {
  return Array.isArray(value) ? new Uint8Array(value) : value;
}
function needsPrototypeChain(desc) {
  switch (desc.file.edition) {
    case EDITION_PROTO3:
      return false;
    case EDITION_PROTO2:
      return true;
    default:
      return desc.fields.some((f) => f.presence != IMPLICIT && f.fieldKind != "message" && !f.oneof);
  }
}
function createZeroValue(field) {
  const defaultValue = field.getDefaultValue();
  if (defaultValue !== void 0) {
    return field.fieldKind == "scalar" && field.longAsString ? defaultValue.toString() : defaultValue;
  }
  return field.fieldKind == "scalar" ? scalarZeroValue(field.scalar, field.longAsString) : field.enum.values[0].number;
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/error.js
var FieldError = class extends Error {
  constructor(fieldOrOneof, message, name = "FieldValueInvalidError") {
    super(message);
    this.name = name;
    this.field = () => fieldOrOneof;
  }
};

// node_modules/@bufbuild/protobuf/dist/esm/wire/text-encoding.js
var te;
function configureTextEncoding(textEncoding) {
  var _a;
  te = Object.assign(Object.assign({}, textEncoding), { encodeUtf8Into: (_a = textEncoding.encodeUtf8Into) !== null && _a !== void 0 ? _a : emulateEncodeInto(textEncoding.encodeUtf8.bind(textEncoding)) });
}
function getTextEncoding() {
  if (!te) {
    const globals = globalThis;
    if (!globals.TextEncoder || !globals.TextDecoder) {
      throw new Error("encoding API missing: install TextEncoder and TextDecoder on globalThis");
    }
    const textEncoder = new globals.TextEncoder();
    const textDecoder = new globals.TextDecoder("utf-8", {
      ignoreBOM: true
    });
    let textDecoderStrict;
    const config = {
      encodeUtf8(text) {
        return textEncoder.encode(text);
      },
      decodeUtf8(bytes, strict) {
        if (strict) {
          if (!textDecoderStrict) {
            textDecoderStrict = new globals.TextDecoder("utf-8", {
              fatal: true,
              ignoreBOM: true
            });
          }
          return textDecoderStrict.decode(bytes);
        }
        return textDecoder.decode(bytes);
      },
      checkUtf8(text) {
        try {
          encodeURIComponent(text);
          return true;
        } catch (_) {
          return false;
        }
      }
    };
    if (textEncoder.encodeInto) {
      config.encodeUtf8Into = textEncoder.encodeInto.bind(textEncoder);
    }
    const nativeStringIsWellFormed = String.prototype.isWellFormed;
    if (nativeStringIsWellFormed) {
      config.checkUtf8 = (text) => {
        return nativeStringIsWellFormed.call(text);
      };
    }
    configureTextEncoding(config);
  }
  return te;
}
function emulateEncodeInto(encodeUtf8) {
  return (text, dest) => {
    const bytes = encodeUtf8(text);
    dest.set(bytes);
    return { written: bytes.byteLength };
  };
}

// node_modules/@bufbuild/protobuf/dist/esm/wire/binary-encoding.js
var WireType;
(function(WireType2) {
  WireType2[WireType2["Varint"] = 0] = "Varint";
  WireType2[WireType2["Bit64"] = 1] = "Bit64";
  WireType2[WireType2["LengthDelimited"] = 2] = "LengthDelimited";
  WireType2[WireType2["StartGroup"] = 3] = "StartGroup";
  WireType2[WireType2["EndGroup"] = 4] = "EndGroup";
  WireType2[WireType2["Bit32"] = 5] = "Bit32";
})(WireType || (WireType = {}));
var UINT32_MAX = 4294967295;
var INT32_MAX = 2147483647;
var INT32_MIN = -2147483648;
var BinaryWriter = class {
  constructor(encodeUtf8) {
    this.stackPos = [];
    this.encodeUtf8Into = encodeUtf8 ? emulateEncodeInto(encodeUtf8) : getTextEncoding().encodeUtf8Into;
    this.buffer = EMPTY_BUFFER;
    this.viewCache = EMPTY_VIEW;
    this.pos = 0;
  }
  ensureCapacity(size) {
    const required = this.pos + size;
    if (required > this.buffer.length) {
      let newLen = this.buffer.length || INITIAL_SIZE;
      while (newLen < required)
        newLen *= 2;
      const newBuf = new Uint8Array(newLen);
      if (this.pos > 0)
        newBuf.set(this.buffer);
      this.buffer = newBuf;
    }
  }
  /**
   * The DataView over `buffer`, rebuilt only if the buffer has grown since it
   * was last used.
   */
  view() {
    const bytes = this.buffer;
    const view = this.viewCache;
    if (view.byteLength === bytes.byteLength)
      return view;
    const newView = new DataView(bytes.buffer);
    this.viewCache = newView;
    return newView;
  }
  /**
   * Return all bytes written and reset this writer.
   */
  finish() {
    const result = this.buffer.slice(0, this.pos);
    this.pos = 0;
    this.stackPos = [];
    return result;
  }
  /**
   * Start a new fork for length-delimited data like a message
   * or a packed repeated field.
   *
   * Must be joined later with `join()`.
   */
  fork() {
    this.stackPos.push(this.pos);
    this.ensureCapacity(DEFAULT_LEN_PREFIX_SIZE);
    this.buffer[this.pos++] = 0;
    return this;
  }
  /**
   * Join the last fork. Write its length and bytes, then
   * return to the previous state.
   */
  join() {
    const forkPos = this.stackPos.pop();
    if (forkPos === void 0)
      throw new Error("invalid state, fork stack empty");
    const len = this.pos - forkPos - DEFAULT_LEN_PREFIX_SIZE;
    const lenPrefixSize = varint32Size(len);
    if (lenPrefixSize > DEFAULT_LEN_PREFIX_SIZE) {
      this.ensureCapacity(lenPrefixSize - DEFAULT_LEN_PREFIX_SIZE);
      this.buffer.copyWithin(forkPos + lenPrefixSize, forkPos + DEFAULT_LEN_PREFIX_SIZE, this.pos);
    }
    this.pos = forkPos;
    this.uint32(len);
    this.pos += len;
    return this;
  }
  /**
   * Writes a tag (field number and wire type).
   *
   * Equivalent to `uint32( (fieldNo << 3 | type) >>> 0 )`.
   *
   * Generated code should compute the tag ahead of time and call `uint32()`.
   */
  tag(fieldNo, type) {
    return this.uint32((fieldNo << 3 | type) >>> 0);
  }
  /**
   * Write a chunk of raw bytes.
   */
  raw(chunk) {
    this.ensureCapacity(chunk.length);
    this.buffer.set(chunk, this.pos);
    this.pos += chunk.length;
    return this;
  }
  /**
   * Write a `uint32` value, an unsigned 32 bit varint.
   */
  uint32(value) {
    assertUInt32(value);
    this.ensureCapacity(5);
    if (value < 128) {
      this.buffer[this.pos++] = value;
      return this;
    }
    while (value > 127) {
      this.buffer[this.pos++] = value & 127 | 128;
      value >>>= 7;
    }
    this.buffer[this.pos++] = value;
    return this;
  }
  /**
   * Write a `int32` value, a signed 32 bit varint.
   */
  int32(value) {
    assertInt32(value);
    if (value >= 0) {
      return this.uint32(value);
    }
    this.ensureCapacity(10);
    for (let i = 0; i < 9; i++) {
      this.buffer[this.pos++] = value & 127 | 128;
      value >>= 7;
    }
    this.buffer[this.pos++] = 1;
    return this;
  }
  /**
   * Write a `bool` value, a varint.
   */
  bool(value) {
    this.ensureCapacity(1);
    this.buffer[this.pos++] = value ? 1 : 0;
    return this;
  }
  /**
   * Write a `bytes` value, length-delimited arbitrary data.
   */
  bytes(value) {
    this.uint32(value.byteLength);
    return this.raw(value);
  }
  /**
   * Write a `string` value, length-delimited data converted to UTF-8 text.
   */
  string(value) {
    if (typeof value !== "string") {
      value = String(value);
    }
    const len = value.length;
    if (len <= ASCII_MAX_LENGTH) {
      this.ensureCapacity(len + 1);
      const ascii = this.buffer;
      let pos = this.pos;
      ascii[pos++] = len;
      let i = 0;
      for (; i < len; i++) {
        const code = value.charCodeAt(i);
        if (code > 127)
          break;
        ascii[pos++] = code;
      }
      if (i == len) {
        this.pos = pos;
        return this;
      }
    }
    this.ensureCapacity(len * 3 + 5);
    const lenPrefixSizeGuess = varint32Size(len);
    const buf2 = this.buffer;
    const start = this.pos;
    const { written } = this.encodeUtf8Into(value, buf2.subarray(start + lenPrefixSizeGuess));
    const lenPrefixSize = varint32Size(written);
    if (lenPrefixSize != lenPrefixSizeGuess) {
      buf2.copyWithin(start + lenPrefixSize, start + lenPrefixSizeGuess, start + lenPrefixSizeGuess + written);
    }
    this.uint32(written);
    this.pos += written;
    return this;
  }
  /**
   * Write a `float` value, 32-bit floating point number.
   */
  float(value) {
    assertFloat32(value);
    this.ensureCapacity(4);
    this.view().setFloat32(this.pos, value, true);
    this.pos += 4;
    return this;
  }
  /**
   * Write a `double` value, a 64-bit floating point number.
   */
  double(value) {
    this.ensureCapacity(8);
    this.view().setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }
  /**
   * Write a `fixed32` value, an unsigned, fixed-length 32-bit integer.
   */
  fixed32(value) {
    assertUInt32(value);
    this.ensureCapacity(4);
    this.view().setUint32(this.pos, value, true);
    this.pos += 4;
    return this;
  }
  /**
   * Write a `sfixed32` value, a signed, fixed-length 32-bit integer.
   */
  sfixed32(value) {
    assertInt32(value);
    this.ensureCapacity(4);
    this.view().setInt32(this.pos, value, true);
    this.pos += 4;
    return this;
  }
  /**
   * Write a `sint32` value, a signed, zigzag-encoded 32-bit varint.
   */
  sint32(value) {
    assertInt32(value);
    return this.uint32((value << 1 ^ value >> 31) >>> 0);
  }
  /**
   * Write a `sfixed64` value, a signed, fixed-length 64-bit integer.
   */
  sfixed64(value) {
    const tc = protoInt64.enc(value);
    this.ensureCapacity(8);
    const view = this.view();
    view.setInt32(this.pos, tc.lo, true);
    view.setInt32(this.pos + 4, tc.hi, true);
    this.pos += 8;
    return this;
  }
  /**
   * Write a `fixed64` value, an unsigned, fixed-length 64 bit integer.
   */
  fixed64(value) {
    const tc = protoInt64.uEnc(value);
    this.ensureCapacity(8);
    const view = this.view();
    view.setInt32(this.pos, tc.lo, true);
    view.setInt32(this.pos + 4, tc.hi, true);
    this.pos += 8;
    return this;
  }
  /**
   * Write a `int64` value, a signed 64-bit varint.
   */
  int64(value) {
    const tc = protoInt64.enc(value);
    return this.writeVarint64(tc.lo, tc.hi);
  }
  /**
   * Write a `sint64` value, a signed, zig-zag-encoded 64-bit varint.
   */
  sint64(value) {
    const tc = protoInt64.enc(value), sign = tc.hi >> 31, lo = tc.lo << 1 ^ sign, hi = (tc.hi << 1 | tc.lo >>> 31) ^ sign;
    return this.writeVarint64(lo, hi);
  }
  /**
   * Write a `uint64` value, an unsigned 64-bit varint.
   */
  uint64(value) {
    const tc = protoInt64.uEnc(value);
    return this.writeVarint64(tc.lo, tc.hi);
  }
  /**
   * Write a 64-bit varint directly into the buffer. Accepts the value as
   * split low/high 32-bit words.
   *
   * Ported from varint64write() to avoid the intermediate number[] buffer.
   * See https://github.com/protocolbuffers/protobuf/blob/8a71927d74a4ce34efe2d8769fda198f52d20d12/js/experimental/runtime/kernel/writer.js#L344
   */
  writeVarint64(lo, hi) {
    this.ensureCapacity(10);
    const buf2 = this.buffer;
    let pos = this.pos;
    for (let i = 0; i < 28; i = i + 7) {
      const shift = lo >>> i;
      const hasNext = !(shift >>> 7 == 0 && hi == 0);
      buf2[pos++] = (hasNext ? shift | 128 : shift) & 255;
      if (!hasNext) {
        this.pos = pos;
        return this;
      }
    }
    const splitBits = lo >>> 28 & 15 | (hi & 7) << 4;
    const hasMoreBits = !(hi >> 3 == 0);
    buf2[pos++] = (hasMoreBits ? splitBits | 128 : splitBits) & 255;
    if (!hasMoreBits) {
      this.pos = pos;
      return this;
    }
    for (let i = 3; i < 31; i = i + 7) {
      const shift = hi >>> i;
      const hasNext = !(shift >>> 7 == 0);
      buf2[pos++] = (hasNext ? shift | 128 : shift) & 255;
      if (!hasNext) {
        this.pos = pos;
        return this;
      }
    }
    buf2[pos++] = hi >>> 31 & 1;
    this.pos = pos;
    return this;
  }
};
var INITIAL_SIZE = 128;
var DEFAULT_LEN_PREFIX_SIZE = 1;
var EMPTY_BUFFER = new Uint8Array(0);
var EMPTY_VIEW = new DataView(EMPTY_BUFFER.buffer);
var ASCII_MAX_LENGTH = 32;
function varint32Size(value) {
  if (value < 128)
    return 1;
  if (value < 16384)
    return 2;
  if (value < 2097152)
    return 3;
  if (value < 268435456)
    return 4;
  return 5;
}
var BinaryReader = class {
  constructor(buf2, decodeUtf8 = getTextEncoding().decodeUtf8) {
    this.decodeUtf8 = decodeUtf8;
    this.varint64Lo = 0;
    this.varint64Hi = 0;
    this.varint64 = varint64read;
    this.uint32 = varint32read;
    this.buf = buf2;
    this.len = buf2.length;
    this.pos = 0;
    this.view = new DataView(buf2.buffer, buf2.byteOffset, buf2.byteLength);
  }
  /**
   * Reads a tag - field number and wire type. Tags are uint32 varints; values
   * that do not fit in uint32 are rejected.
   */
  tag() {
    const start = this.pos;
    const tag = this.uint32();
    const bytesRead = this.pos - start;
    if (bytesRead > 5 || bytesRead == 5 && this.buf[this.pos - 1] > 15) {
      throw new Error("illegal tag: varint overflows uint32");
    }
    const fieldNo = tag >>> 3;
    const wireType = tag & 7;
    if (fieldNo <= 0 || wireType > 5) {
      throw new Error("illegal tag: field no " + fieldNo + " wire type " + wireType);
    }
    return [fieldNo, wireType];
  }
  /**
   * Skip one element and return the skipped data.
   *
   * When skipping StartGroup, provide the tags field number to check for
   * matching field number in the EndGroup tag. Recursion into nested groups
   * is guarded by the `recursionLimit` argument: When the limit is reached,
   * this method throws.
   */
  skip(wireType, fieldNo, recursionLimit = 100) {
    let start = this.pos;
    switch (wireType) {
      case WireType.Varint:
        while (this.buf[this.pos++] & 128) {
        }
        break;
      // @ts-ignore TS7029: Fallthrough case in switch -- ignore instead of expect-error for compiler settings without noFallthroughCasesInSwitch: true
      case WireType.Bit64:
        this.pos += 4;
      case WireType.Bit32:
        this.pos += 4;
        break;
      case WireType.LengthDelimited:
        let len = this.uint32();
        this.pos += len;
        break;
      case WireType.StartGroup:
        if (recursionLimit <= 0) {
          throw new Error("maximum recursion depth reached");
        }
        for (; ; ) {
          const [fn, wt] = this.tag();
          if (wt === WireType.EndGroup) {
            if (fieldNo !== void 0 && fn !== fieldNo) {
              throw new Error("invalid end group tag");
            }
            break;
          }
          this.skip(wt, fn, recursionLimit - 1);
        }
        break;
      default:
        throw new Error("cant skip wire type " + wireType);
    }
    this.assertBounds();
    return this.buf.subarray(start, this.pos);
  }
  /**
   * Throws error if position in byte array is out of range.
   */
  assertBounds() {
    if (this.pos > this.len)
      throw new RangeError("premature EOF");
  }
  /**
   * Read a `int32` field, a signed 32 bit varint.
   */
  int32() {
    return this.uint32() | 0;
  }
  /**
   * Read a `sint32` field, a signed, zigzag-encoded 32-bit varint.
   */
  sint32() {
    let zze = this.uint32();
    return zze >>> 1 ^ -(zze & 1);
  }
  /**
   * Read a `int64` field, a signed 64-bit varint.
   */
  int64() {
    this.varint64();
    return protoInt64.dec(this.varint64Lo, this.varint64Hi);
  }
  /**
   * Read a `uint64` field, an unsigned 64-bit varint.
   */
  uint64() {
    this.varint64();
    return protoInt64.uDec(this.varint64Lo, this.varint64Hi);
  }
  /**
   * Read a `sint64` field, a signed, zig-zag-encoded 64-bit varint.
   */
  sint64() {
    this.varint64();
    let lo = this.varint64Lo;
    let hi = this.varint64Hi;
    let s = -(lo & 1);
    lo = (lo >>> 1 | (hi & 1) << 31) ^ s;
    hi = hi >>> 1 ^ s;
    return protoInt64.dec(lo, hi);
  }
  /**
   * Read a `bool` field, a variant.
   */
  bool() {
    const b = this.buf[this.pos];
    if (b < 128) {
      this.pos++;
      return b !== 0;
    }
    this.varint64();
    return this.varint64Lo !== 0 || this.varint64Hi !== 0;
  }
  /**
   * Read a `fixed32` field, an unsigned, fixed-length 32-bit integer.
   */
  fixed32() {
    return this.view.getUint32((this.pos += 4) - 4, true);
  }
  /**
   * Read a `sfixed32` field, a signed, fixed-length 32-bit integer.
   */
  sfixed32() {
    return this.view.getInt32((this.pos += 4) - 4, true);
  }
  /**
   * Read a `fixed64` field, an unsigned, fixed-length 64 bit integer.
   */
  fixed64() {
    return protoInt64.uDec(this.sfixed32(), this.sfixed32());
  }
  /**
   * Read a `fixed64` field, a signed, fixed-length 64-bit integer.
   */
  sfixed64() {
    return protoInt64.dec(this.sfixed32(), this.sfixed32());
  }
  /**
   * Read a `float` field, 32-bit floating point number.
   */
  float() {
    return this.view.getFloat32((this.pos += 4) - 4, true);
  }
  /**
   * Read a `double` field, a 64-bit floating point number.
   */
  double() {
    return this.view.getFloat64((this.pos += 8) - 8, true);
  }
  /**
   * Read a `bytes` field, length-delimited arbitrary data.
   */
  bytes() {
    let len = this.uint32(), start = this.pos;
    this.pos += len;
    this.assertBounds();
    return this.buf.subarray(start, start + len);
  }
  /**
   * Read a `string` field, length-delimited data converted to UTF-8 text. If
   * `strict` is true, throw on invalid UTF-8 instead of substituting U+FFFD.
   */
  string(strict) {
    const len = this.uint32();
    const start = this.pos;
    this.pos += len;
    this.assertBounds();
    const buf2 = this.buf;
    if (len <= ASCII_MAX_LENGTH) {
      const codes = new Array(len);
      for (let i = 0; i < len; i++) {
        const byte = buf2[start + i];
        if (byte > 127) {
          return this.decodeUtf8(buf2.subarray(start, this.pos), strict);
        }
        codes[i] = byte;
      }
      return String.fromCharCode.apply(String, codes);
    }
    return this.decodeUtf8(buf2.subarray(start, this.pos), strict);
  }
};
function assertInt32(arg) {
  if (typeof arg == "string") {
    arg = Number(arg);
  } else if (typeof arg != "number") {
    throw new Error("invalid int32: " + typeof arg);
  }
  if (!Number.isInteger(arg) || arg > INT32_MAX || arg < INT32_MIN)
    throw new Error("invalid int32: " + arg);
}
function assertUInt32(arg) {
  if (typeof arg == "string") {
    arg = Number(arg);
  } else if (typeof arg != "number") {
    throw new Error("invalid uint32: " + typeof arg);
  }
  if (!Number.isInteger(arg) || arg > UINT32_MAX || arg < 0)
    throw new Error("invalid uint32: " + arg);
}
function assertFloat32(arg) {
  if (typeof arg == "string") {
    const o = arg;
    arg = Number(arg);
    if (Number.isNaN(arg) && o !== "NaN") {
      throw new Error("invalid float32: " + o);
    }
  } else if (typeof arg != "number") {
    throw new Error("invalid float32: " + typeof arg);
  }
  if (!Number.isFinite(Math.fround(arg)) && Number.isFinite(arg)) {
    throw new Error("invalid float32: " + arg);
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/message.js
var NULL_VALUE = 0;
function localMessageMapper(field) {
  if (usesJsonRepresentation(field)) {
    return {
      toMessage: (local) => wktStructToReflect(local),
      toLocal: (message) => wktStructToLocal(message)
    };
  }
  if (field.fieldKind == "message" && !field.oneof && isWrapperDesc(field.message)) {
    const wrapperDesc = field.message;
    const valueLocalName = wrapperDesc.fields[0].localName;
    return {
      toMessage: (local) => {
        const message = create(wrapperDesc);
        if (local !== void 0) {
          message[valueLocalName] = local;
        }
        return message;
      },
      toLocal: (message) => message[valueLocalName]
    };
  }
  const childDesc = field.message;
  return {
    toMessage: (local) => local === void 0 ? create(childDesc) : local,
    toLocal: (message) => message
  };
}
function usesJsonRepresentation(field) {
  return field.message.typeName == "google.protobuf.Struct" && field.parent.typeName != "google.protobuf.Value";
}
function wktStructToReflect(json) {
  const struct = {
    $typeName: "google.protobuf.Struct",
    fields: {}
  };
  if (isObject(json)) {
    for (const k of Object.keys(json)) {
      setOwn(struct.fields, k, wktValueToReflect(json[k]));
    }
  }
  return struct;
}
function wktStructToLocal(val) {
  const json = {};
  for (const k of Object.keys(val.fields)) {
    setOwn(json, k, wktValueToLocal(val.fields[k]));
  }
  return json;
}
function wktValueToLocal(val) {
  switch (val.kind.case) {
    case "structValue":
      return wktStructToLocal(val.kind.value);
    case "listValue":
      return val.kind.value.values.map(wktValueToLocal);
    case "nullValue":
    case void 0:
      return null;
    default:
      return val.kind.value;
  }
}
function wktValueToReflect(json) {
  const value = {
    $typeName: "google.protobuf.Value",
    kind: { case: void 0 }
  };
  switch (typeof json) {
    case "number":
      value.kind = { case: "numberValue", value: json };
      break;
    case "string":
      value.kind = { case: "stringValue", value: json };
      break;
    case "boolean":
      value.kind = { case: "boolValue", value: json };
      break;
    case "object":
      if (json === null) {
        value.kind = { case: "nullValue", value: NULL_VALUE };
      } else if (Array.isArray(json)) {
        const listValue = {
          $typeName: "google.protobuf.ListValue",
          values: []
        };
        if (Array.isArray(json)) {
          for (const e of json) {
            listValue.values.push(wktValueToReflect(e));
          }
        }
        value.kind = {
          case: "listValue",
          value: listValue
        };
      } else {
        value.kind = {
          case: "structValue",
          value: wktStructToReflect(json)
        };
      }
      break;
  }
  return value;
}

// node_modules/@bufbuild/protobuf/dist/esm/wire/base64-encoding.js
var nativeSetFromBase64 = Uint8Array.prototype.setFromBase64;
function base64Decode(base64Str) {
  const len = base64Str.length;
  let size = len - (len + 3 >> 2);
  if ((len & 3) == 0 && base64Str[len - 1] == "=") {
    size -= base64Str[len - 2] == "=" ? 2 : 1;
  }
  const bytes = new Uint8Array(size);
  let written = -1;
  if (nativeSetFromBase64) {
    try {
      const result = nativeSetFromBase64.call(bytes, base64Str);
      if (result.read == len) {
        written = result.written;
      }
    } catch (_a) {
    }
  }
  if (written < 0) {
    written = setFromBase64(bytes, base64Str);
  }
  return written == size ? bytes : bytes.subarray(0, written);
}
function setFromBase64(bytes, base64Str) {
  const table = getDecodeTable();
  let bytePos = 0, groupPos = 0, b, p = 0;
  for (let i = 0; i < base64Str.length; i++) {
    b = table[base64Str.charCodeAt(i)];
    if (b === void 0) {
      switch (base64Str[i]) {
        // @ts-ignore TS7029: Fallthrough case in switch -- ignore instead of expect-error for compiler settings without noFallthroughCasesInSwitch: true
        case "=":
          groupPos = 0;
        // reset state when padding found
        case "\n":
        case "\r":
        case "	":
        case " ":
          continue;
        // skip white-space, and padding
        default:
          throw Error("invalid base64 string");
      }
    }
    switch (groupPos) {
      case 0:
        p = b;
        groupPos = 1;
        break;
      case 1:
        bytes[bytePos++] = p << 2 | (b & 48) >> 4;
        p = b;
        groupPos = 2;
        break;
      case 2:
        bytes[bytePos++] = (p & 15) << 4 | (b & 60) >> 2;
        p = b;
        groupPos = 3;
        break;
      case 3:
        bytes[bytePos++] = (p & 3) << 6 | b;
        groupPos = 0;
        break;
    }
  }
  if (groupPos == 1)
    throw Error("invalid base64 string");
  return bytePos;
}
var nativeToBase64 = Uint8Array.prototype.toBase64;
var encodeTableStd;
var encodeTableUrl;
var decodeTable;
function getEncodeTable(encoding) {
  if (!encodeTableStd) {
    encodeTableStd = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("");
    encodeTableUrl = encodeTableStd.slice(0, -2).concat("-", "_");
  }
  return encoding == "url" ? (
    // biome-ignore lint/style/noNonNullAssertion: TS fails to narrow down
    encodeTableUrl
  ) : encodeTableStd;
}
function getDecodeTable() {
  if (!decodeTable) {
    decodeTable = [];
    const encodeTable = getEncodeTable("std");
    for (let i = 0; i < encodeTable.length; i++)
      decodeTable[encodeTable[i].charCodeAt(0)] = i;
    decodeTable["-".charCodeAt(0)] = encodeTable.indexOf("+");
    decodeTable["_".charCodeAt(0)] = encodeTable.indexOf("/");
  }
  return decodeTable;
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/names.js
function protoCamelCase(snakeCase) {
  let capNext = false;
  const b = [];
  for (let i = 0; i < snakeCase.length; i++) {
    let c = snakeCase.charAt(i);
    switch (c) {
      case "_":
        capNext = true;
        break;
      case "0":
      case "1":
      case "2":
      case "3":
      case "4":
      case "5":
      case "6":
      case "7":
      case "8":
      case "9":
        b.push(c);
        capNext = false;
        break;
      default:
        if (capNext) {
          capNext = false;
          c = c.toUpperCase();
        }
        b.push(c);
        break;
    }
  }
  return b.join("");
}
var reservedObjectProperties = /* @__PURE__ */ new Set([
  // names reserved by JavaScript
  "constructor",
  "toString",
  "toJSON",
  "valueOf"
]);
function safeObjectProperty(name) {
  return reservedObjectProperties.has(name) ? name + "$" : name;
}

// node_modules/@bufbuild/protobuf/dist/esm/codegenv2/restore-json-names.js
function restoreJsonNames(message) {
  for (const f of message.field) {
    if (!unsafeIsSetExplicit(f, "jsonName")) {
      f.jsonName = protoCamelCase(f.name);
    }
  }
  message.nestedType.forEach(restoreJsonNames);
}

// node_modules/@bufbuild/protobuf/dist/esm/wire/text-format.js
function parseTextFormatEnumValue(descEnum, value) {
  const enumValue = descEnum.values.find((v) => v.name === value);
  if (!enumValue) {
    throw new Error(`cannot parse ${descEnum} default value: ${value}`);
  }
  return enumValue.number;
}
function parseTextFormatScalarValue(type, value) {
  switch (type) {
    case ScalarType.STRING:
      return value;
    case ScalarType.BYTES: {
      const u = unescapeBytesDefaultValue(value);
      if (u === false) {
        throw new Error(`cannot parse ${ScalarType[type]} default value: ${value}`);
      }
      return u;
    }
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      return protoInt64.parse(value);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return protoInt64.uParse(value);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      switch (value) {
        case "inf":
          return Number.POSITIVE_INFINITY;
        case "-inf":
          return Number.NEGATIVE_INFINITY;
        case "nan":
          return Number.NaN;
        default:
          return parseFloat(value);
      }
    case ScalarType.BOOL:
      return value === "true";
    case ScalarType.INT32:
    case ScalarType.UINT32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return parseInt(value, 10);
  }
}
function unescapeBytesDefaultValue(str) {
  const b = [];
  const input = {
    tail: str,
    c: "",
    next() {
      if (this.tail.length == 0) {
        return false;
      }
      this.c = this.tail[0];
      this.tail = this.tail.substring(1);
      return true;
    },
    take(n) {
      if (this.tail.length >= n) {
        const r = this.tail.substring(0, n);
        this.tail = this.tail.substring(n);
        return r;
      }
      return false;
    }
  };
  while (input.next()) {
    switch (input.c) {
      case "\\":
        if (input.next()) {
          switch (input.c) {
            case "\\":
              b.push(input.c.charCodeAt(0));
              break;
            case "b":
              b.push(8);
              break;
            case "f":
              b.push(12);
              break;
            case "n":
              b.push(10);
              break;
            case "r":
              b.push(13);
              break;
            case "t":
              b.push(9);
              break;
            case "v":
              b.push(11);
              break;
            case "0":
            case "1":
            case "2":
            case "3":
            case "4":
            case "5":
            case "6":
            case "7": {
              const s = input.c;
              const t = input.take(2);
              if (t === false) {
                return false;
              }
              const n = parseInt(s + t, 8);
              if (Number.isNaN(n)) {
                return false;
              }
              b.push(n);
              break;
            }
            case "x": {
              const s = input.c;
              const t = input.take(2);
              if (t === false) {
                return false;
              }
              const n = parseInt(s + t, 16);
              if (Number.isNaN(n)) {
                return false;
              }
              b.push(n);
              break;
            }
            case "u": {
              const s = input.c;
              const t = input.take(4);
              if (t === false) {
                return false;
              }
              const n = parseInt(s + t, 16);
              if (Number.isNaN(n)) {
                return false;
              }
              const chunk = new Uint8Array(4);
              const view = new DataView(chunk.buffer);
              view.setInt32(0, n, true);
              b.push(chunk[0], chunk[1], chunk[2], chunk[3]);
              break;
            }
            case "U": {
              const s = input.c;
              const t = input.take(8);
              if (t === false) {
                return false;
              }
              const tc = protoInt64.uEnc(s + t);
              const chunk = new Uint8Array(8);
              const view = new DataView(chunk.buffer);
              view.setInt32(0, tc.lo, true);
              view.setInt32(4, tc.hi, true);
              b.push(chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]);
              break;
            }
          }
        }
        break;
      default:
        b.push(input.c.charCodeAt(0));
    }
  }
  return new Uint8Array(b);
}

// node_modules/@bufbuild/protobuf/dist/esm/reflect/nested-types.js
function* nestedTypes(desc) {
  switch (desc.kind) {
    case "file":
      for (const message of desc.messages) {
        yield message;
        yield* nestedTypes(message);
      }
      yield* desc.enums;
      yield* desc.services;
      yield* desc.extensions;
      break;
    case "message":
      for (const message of desc.nestedMessages) {
        yield message;
        yield* nestedTypes(message);
      }
      yield* desc.nestedEnums;
      yield* desc.nestedExtensions;
      break;
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/registry.js
function createEmbeddedFileRegistry(fileDescriptorProto, resolve) {
  return buildFileRegistry([fileDescriptorProto, resolve]);
}
function buildFileRegistry(args, check) {
  const registry = createBaseRegistry();
  if (!args.length) {
    return registry;
  }
  if ("$typeName" in args[0] && args[0].$typeName == "google.protobuf.FileDescriptorSet") {
    for (const file of args[0].file) {
      check === null || check === void 0 ? void 0 : check(file);
      addFile(file, registry);
    }
    return registry;
  }
  if ("$typeName" in args[0]) {
    let recurseDeps = function(file) {
      const deps = [];
      for (const protoFileName of file.dependency) {
        if (registry.getFile(protoFileName) != void 0) {
          continue;
        }
        if (seen.has(protoFileName)) {
          continue;
        }
        const dep = resolve(protoFileName);
        if (!dep) {
          throw new Error(`Unable to resolve ${protoFileName}, imported by ${file.name}`);
        }
        if ("kind" in dep) {
          registry.addFile(dep, false, true);
        } else {
          seen.add(dep.name);
          deps.push(dep);
        }
      }
      return deps.concat(...deps.map(recurseDeps));
    };
    const input = args[0];
    const resolve = args[1];
    const seen = /* @__PURE__ */ new Set();
    for (const file of [input, ...recurseDeps(input)].reverse()) {
      check === null || check === void 0 ? void 0 : check(file);
      addFile(file, registry);
    }
  } else {
    for (const fileReg of args) {
      for (const file of fileReg.files) {
        registry.addFile(file);
      }
    }
  }
  return registry;
}
function createBaseRegistry() {
  const types = /* @__PURE__ */ new Map();
  const extendees = /* @__PURE__ */ new Map();
  const files = /* @__PURE__ */ new Map();
  return {
    kind: "registry",
    types,
    extendees,
    [Symbol.iterator]() {
      return types.values();
    },
    get files() {
      return files.values();
    },
    addFile(file, skipTypes, withDeps) {
      files.set(file.proto.name, file);
      if (!skipTypes) {
        for (const type of nestedTypes(file)) {
          this.add(type);
        }
      }
      if (withDeps) {
        for (const f of file.dependencies) {
          this.addFile(f, skipTypes, withDeps);
        }
      }
    },
    add(desc) {
      if (desc.kind == "extension") {
        let numberToExt = extendees.get(desc.extendee.typeName);
        if (!numberToExt) {
          extendees.set(
            desc.extendee.typeName,
            // biome-ignore lint/suspicious/noAssignInExpressions: no
            numberToExt = /* @__PURE__ */ new Map()
          );
        }
        numberToExt.set(desc.number, desc);
      }
      types.set(desc.typeName, desc);
    },
    get(typeName) {
      return types.get(typeName);
    },
    getFile(fileName) {
      return files.get(fileName);
    },
    getMessage(typeName) {
      const t = types.get(typeName);
      return (t === null || t === void 0 ? void 0 : t.kind) == "message" ? t : void 0;
    },
    getEnum(typeName) {
      const t = types.get(typeName);
      return (t === null || t === void 0 ? void 0 : t.kind) == "enum" ? t : void 0;
    },
    getExtension(typeName) {
      const t = types.get(typeName);
      return (t === null || t === void 0 ? void 0 : t.kind) == "extension" ? t : void 0;
    },
    getExtensionFor(extendee, no) {
      var _a;
      return (_a = extendees.get(extendee.typeName)) === null || _a === void 0 ? void 0 : _a.get(no);
    },
    getService(typeName) {
      const t = types.get(typeName);
      return (t === null || t === void 0 ? void 0 : t.kind) == "service" ? t : void 0;
    }
  };
}
var EDITION_PROTO22 = 998;
var EDITION_PROTO32 = 999;
var EDITION_UNSTABLE = 9999;
var TYPE_STRING = 9;
var TYPE_GROUP = 10;
var TYPE_MESSAGE = 11;
var TYPE_BYTES = 12;
var TYPE_ENUM = 14;
var LABEL_REPEATED = 3;
var LABEL_REQUIRED = 2;
var JS_STRING = 1;
var IDEMPOTENCY_UNKNOWN = 0;
var EXPLICIT = 1;
var IMPLICIT2 = 2;
var LEGACY_REQUIRED = 3;
var PACKED = 1;
var DELIMITED = 2;
var OPEN = 1;
var VERIFY = 2;
var maximumEdition = 1002;
var featureDefaults = {
  // EDITION_PROTO2
  998: {
    fieldPresence: 1,
    // EXPLICIT,
    enumType: 2,
    // CLOSED,
    repeatedFieldEncoding: 2,
    // EXPANDED,
    utf8Validation: 3,
    // NONE,
    messageEncoding: 1,
    // LENGTH_PREFIXED,
    jsonFormat: 2,
    // LEGACY_BEST_EFFORT,
    enforceNamingStyle: 2,
    // STYLE_LEGACY,
    defaultSymbolVisibility: 1,
    // EXPORT_ALL,
    enforceProtoLimits: 1
    // LEGACY_NO_EXPLICIT_LIMITS,
  },
  // EDITION_PROTO3
  999: {
    fieldPresence: 2,
    // IMPLICIT,
    enumType: 1,
    // OPEN,
    repeatedFieldEncoding: 1,
    // PACKED,
    utf8Validation: 2,
    // VERIFY,
    messageEncoding: 1,
    // LENGTH_PREFIXED,
    jsonFormat: 1,
    // ALLOW,
    enforceNamingStyle: 2,
    // STYLE_LEGACY,
    defaultSymbolVisibility: 1,
    // EXPORT_ALL,
    enforceProtoLimits: 1
    // LEGACY_NO_EXPLICIT_LIMITS,
  },
  // EDITION_2023
  1e3: {
    fieldPresence: 1,
    // EXPLICIT,
    enumType: 1,
    // OPEN,
    repeatedFieldEncoding: 1,
    // PACKED,
    utf8Validation: 2,
    // VERIFY,
    messageEncoding: 1,
    // LENGTH_PREFIXED,
    jsonFormat: 1,
    // ALLOW,
    enforceNamingStyle: 2,
    // STYLE_LEGACY,
    defaultSymbolVisibility: 1,
    // EXPORT_ALL,
    enforceProtoLimits: 1
    // LEGACY_NO_EXPLICIT_LIMITS,
  },
  // EDITION_2024
  1001: {
    fieldPresence: 1,
    // EXPLICIT,
    enumType: 1,
    // OPEN,
    repeatedFieldEncoding: 1,
    // PACKED,
    utf8Validation: 2,
    // VERIFY,
    messageEncoding: 1,
    // LENGTH_PREFIXED,
    jsonFormat: 1,
    // ALLOW,
    enforceNamingStyle: 1,
    // STYLE2024,
    defaultSymbolVisibility: 2,
    // EXPORT_TOP_LEVEL,
    enforceProtoLimits: 1
    // LEGACY_NO_EXPLICIT_LIMITS,
  },
  // EDITION_2026
  1002: {
    fieldPresence: 1,
    // EXPLICIT,
    enumType: 1,
    // OPEN,
    repeatedFieldEncoding: 1,
    // PACKED,
    utf8Validation: 2,
    // VERIFY,
    messageEncoding: 1,
    // LENGTH_PREFIXED,
    jsonFormat: 1,
    // ALLOW,
    enforceNamingStyle: 3,
    // STYLE2026,
    defaultSymbolVisibility: 4,
    // STRICT,
    enforceProtoLimits: 2
    // PROTO_LIMITS2026,
  }
};
function addFile(proto, reg) {
  var _a, _b;
  const file = {
    kind: "file",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    edition: getFileEdition(proto),
    name: proto.name.replace(/\.proto$/, ""),
    dependencies: findFileDependencies(proto, reg),
    enums: [],
    messages: [],
    extensions: [],
    services: [],
    toString() {
      return `file ${proto.name}`;
    }
  };
  const mapEntriesStore = /* @__PURE__ */ new Map();
  const mapEntries = {
    get(typeName) {
      return mapEntriesStore.get(typeName);
    },
    add(desc) {
      var _a2;
      assert(((_a2 = desc.proto.options) === null || _a2 === void 0 ? void 0 : _a2.mapEntry) === true);
      mapEntriesStore.set(desc.typeName, desc);
    }
  };
  for (const enumProto of proto.enumType) {
    addEnum(enumProto, file, void 0, reg);
  }
  for (const messageProto of proto.messageType) {
    addMessage(messageProto, file, void 0, reg, mapEntries);
  }
  for (const serviceProto of proto.service) {
    addService(serviceProto, file, reg);
  }
  addExtensions(file, reg);
  for (const mapEntry of mapEntriesStore.values()) {
    addFields(mapEntry, reg, mapEntries);
  }
  for (const message of file.messages) {
    addFields(message, reg, mapEntries);
    addExtensions(message, reg);
  }
  reg.addFile(file, true);
}
function addExtensions(desc, reg) {
  switch (desc.kind) {
    case "file":
      for (const proto of desc.proto.extension) {
        const ext = newField(proto, desc, reg);
        desc.extensions.push(ext);
        reg.add(ext);
      }
      break;
    case "message":
      for (const proto of desc.proto.extension) {
        const ext = newField(proto, desc, reg);
        desc.nestedExtensions.push(ext);
        reg.add(ext);
      }
      for (const message of desc.nestedMessages) {
        addExtensions(message, reg);
      }
      break;
  }
}
function addFields(message, reg, mapEntries) {
  const allOneofs = message.proto.oneofDecl.map((proto) => newOneof(proto, message));
  const oneofsSeen = /* @__PURE__ */ new Set();
  for (const proto of message.proto.field) {
    const oneof = findOneof(proto, allOneofs);
    const field = newField(proto, message, reg, oneof, mapEntries);
    message.fields.push(field);
    message.field[field.localName] = field;
    if (oneof === void 0) {
      message.members.push(field);
    } else {
      oneof.fields.push(field);
      if (!oneofsSeen.has(oneof)) {
        oneofsSeen.add(oneof);
        message.members.push(oneof);
      }
    }
  }
  for (const oneof of allOneofs.filter((o) => oneofsSeen.has(o))) {
    message.oneofs.push(oneof);
  }
  for (const child of message.nestedMessages) {
    addFields(child, reg, mapEntries);
  }
}
function addEnum(proto, file, parent, reg) {
  var _a, _b, _c, _d, _e, _f, _g;
  var _h, _j;
  const sharedPrefix = findEnumSharedPrefix(proto.name, proto.value);
  const desc = {
    kind: "enum",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    file,
    parent,
    open: true,
    name: proto.name,
    typeName: makeTypeName(proto, parent, file),
    value: {},
    values: [],
    sharedPrefix,
    toString() {
      return `enum ${this.typeName}`;
    }
  };
  desc.open = isEnumOpen(desc);
  reg.add(desc);
  for (const p of proto.value) {
    const name = p.name;
    const value = {
      kind: "enum_value",
      proto: p,
      deprecated: (_d = (_c = p.options) === null || _c === void 0 ? void 0 : _c.deprecated) !== null && _d !== void 0 ? _d : false,
      parent: desc,
      name,
      localName: safeObjectProperty(sharedPrefix == void 0 ? name : name.substring(sharedPrefix.length)),
      number: p.number,
      jsonName: (_e = findEnumValueJsonName(p)) !== null && _e !== void 0 ? _e : name,
      toString() {
        return `enum value ${desc.typeName}.${name}`;
      }
    };
    desc.values.push(value);
    (_f = (_h = desc.value)[_j = p.number]) !== null && _f !== void 0 ? _f : _h[_j] = value;
  }
  ((_g = parent === null || parent === void 0 ? void 0 : parent.nestedEnums) !== null && _g !== void 0 ? _g : file.enums).push(desc);
}
function addMessage(proto, file, parent, reg, mapEntries) {
  var _a, _b, _c, _d;
  const desc = {
    kind: "message",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    file,
    parent,
    name: proto.name,
    typeName: makeTypeName(proto, parent, file),
    fields: [],
    field: {},
    oneofs: [],
    members: [],
    nestedEnums: [],
    nestedMessages: [],
    nestedExtensions: [],
    toString() {
      return `message ${this.typeName}`;
    }
  };
  if (((_c = proto.options) === null || _c === void 0 ? void 0 : _c.mapEntry) === true) {
    mapEntries.add(desc);
  } else {
    ((_d = parent === null || parent === void 0 ? void 0 : parent.nestedMessages) !== null && _d !== void 0 ? _d : file.messages).push(desc);
    reg.add(desc);
  }
  for (const enumProto of proto.enumType) {
    addEnum(enumProto, file, desc, reg);
  }
  for (const messageProto of proto.nestedType) {
    addMessage(messageProto, file, desc, reg, mapEntries);
  }
}
function addService(proto, file, reg) {
  var _a, _b;
  const desc = {
    kind: "service",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    file,
    name: proto.name,
    typeName: makeTypeName(proto, void 0, file),
    methods: [],
    method: {},
    toString() {
      return `service ${this.typeName}`;
    }
  };
  file.services.push(desc);
  reg.add(desc);
  for (const methodProto of proto.method) {
    const method = newMethod(methodProto, desc, reg);
    desc.methods.push(method);
    desc.method[method.localName] = method;
  }
}
function newMethod(proto, parent, reg) {
  var _a, _b, _c, _d;
  let methodKind;
  if (proto.clientStreaming && proto.serverStreaming) {
    methodKind = "bidi_streaming";
  } else if (proto.clientStreaming) {
    methodKind = "client_streaming";
  } else if (proto.serverStreaming) {
    methodKind = "server_streaming";
  } else {
    methodKind = "unary";
  }
  const input = reg.getMessage(trimLeadingDot(proto.inputType));
  const output = reg.getMessage(trimLeadingDot(proto.outputType));
  assert(input, `invalid MethodDescriptorProto: input_type ${proto.inputType} not found`);
  assert(output, `invalid MethodDescriptorProto: output_type ${proto.inputType} not found`);
  const name = proto.name;
  return {
    kind: "rpc",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    parent,
    name,
    localName: safeObjectProperty(name.length ? safeObjectProperty(name[0].toLowerCase() + name.substring(1)) : name),
    methodKind,
    input,
    output,
    idempotency: (_d = (_c = proto.options) === null || _c === void 0 ? void 0 : _c.idempotencyLevel) !== null && _d !== void 0 ? _d : IDEMPOTENCY_UNKNOWN,
    toString() {
      return `rpc ${parent.typeName}.${name}`;
    }
  };
}
function newOneof(proto, parent) {
  return {
    kind: "oneof",
    proto,
    deprecated: false,
    parent,
    fields: [],
    name: proto.name,
    localName: safeObjectProperty(protoCamelCase(proto.name)),
    toString() {
      return `oneof ${parent.typeName}.${this.name}`;
    }
  };
}
function newField(proto, parentOrFile, reg, oneof, mapEntries) {
  var _a, _b, _c;
  const isExtension = mapEntries === void 0;
  const field = {
    kind: "field",
    proto,
    deprecated: (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.deprecated) !== null && _b !== void 0 ? _b : false,
    name: proto.name,
    number: proto.number,
    scalar: void 0,
    message: void 0,
    enum: void 0,
    presence: getFieldPresence(proto, oneof, isExtension, parentOrFile),
    utf8Validation: isUtf8Validated(proto, parentOrFile),
    listKind: void 0,
    mapKind: void 0,
    mapKey: void 0,
    delimitedEncoding: void 0,
    packed: void 0,
    longAsString: false,
    getDefaultValue: void 0
  };
  let toStr;
  if (isExtension) {
    const file = parentOrFile.kind == "file" ? parentOrFile : parentOrFile.file;
    const parent = parentOrFile.kind == "file" ? void 0 : parentOrFile;
    const typeName = makeTypeName(proto, parent, file);
    field.kind = "extension";
    field.file = file;
    field.parent = parent;
    field.oneof = void 0;
    field.typeName = typeName;
    field.jsonName = `[${typeName}]`;
    toStr = () => `extension ${typeName}`;
    const extendee = reg.getMessage(trimLeadingDot(proto.extendee));
    assert(extendee, `invalid FieldDescriptorProto: extendee ${proto.extendee} not found`);
    field.extendee = extendee;
  } else {
    const parent = parentOrFile;
    assert(parent.kind == "message");
    field.parent = parent;
    field.oneof = oneof;
    field.localName = oneof ? protoCamelCase(proto.name) : safeObjectProperty(protoCamelCase(proto.name));
    field.jsonName = proto.jsonName;
    toStr = () => `field ${parent.typeName}.${proto.name}`;
  }
  Object.defineProperty(field, "toString", {
    value: toStr,
    writable: true,
    enumerable: true,
    configurable: true
  });
  const label = proto.label;
  const type = proto.type;
  const jstype = (_c = proto.options) === null || _c === void 0 ? void 0 : _c.jstype;
  if (label === LABEL_REPEATED) {
    const mapEntry = type == TYPE_MESSAGE ? mapEntries === null || mapEntries === void 0 ? void 0 : mapEntries.get(trimLeadingDot(proto.typeName)) : void 0;
    if (mapEntry) {
      field.fieldKind = "map";
      const { key, value } = findMapEntryFields(mapEntry);
      field.mapKey = key.scalar;
      field.mapKind = value.fieldKind;
      field.message = value.message;
      field.delimitedEncoding = false;
      field.enum = value.enum;
      field.scalar = value.scalar;
      return field;
    }
    field.fieldKind = "list";
    switch (type) {
      case TYPE_MESSAGE:
      case TYPE_GROUP:
        field.listKind = "message";
        field.message = reg.getMessage(trimLeadingDot(proto.typeName));
        assert(field.message);
        field.delimitedEncoding = isDelimitedEncoding(proto, parentOrFile);
        break;
      case TYPE_ENUM:
        field.listKind = "enum";
        field.enum = reg.getEnum(trimLeadingDot(proto.typeName));
        assert(field.enum);
        break;
      default:
        field.listKind = "scalar";
        field.scalar = type;
        field.longAsString = jstype == JS_STRING;
        break;
    }
    field.packed = isPackedField(proto, parentOrFile);
    return field;
  }
  switch (type) {
    case TYPE_MESSAGE:
    case TYPE_GROUP:
      field.fieldKind = "message";
      field.message = reg.getMessage(trimLeadingDot(proto.typeName));
      assert(field.message, `invalid FieldDescriptorProto: type_name ${proto.typeName} not found`);
      field.delimitedEncoding = isDelimitedEncoding(proto, parentOrFile);
      field.getDefaultValue = () => void 0;
      break;
    case TYPE_ENUM: {
      const enumeration = reg.getEnum(trimLeadingDot(proto.typeName));
      assert(enumeration !== void 0, `invalid FieldDescriptorProto: type_name ${proto.typeName} not found`);
      field.fieldKind = "enum";
      field.enum = reg.getEnum(trimLeadingDot(proto.typeName));
      field.getDefaultValue = () => {
        return unsafeIsSetExplicit(proto, "defaultValue") ? parseTextFormatEnumValue(enumeration, proto.defaultValue) : void 0;
      };
      break;
    }
    default: {
      field.fieldKind = "scalar";
      field.scalar = type;
      field.longAsString = jstype == JS_STRING;
      field.getDefaultValue = () => {
        return unsafeIsSetExplicit(proto, "defaultValue") ? parseTextFormatScalarValue(type, proto.defaultValue) : void 0;
      };
      break;
    }
  }
  return field;
}
function getFileEdition(proto) {
  switch (proto.syntax) {
    case "":
    case "proto2":
      return EDITION_PROTO22;
    case "proto3":
      return EDITION_PROTO32;
    case "editions":
      if (proto.edition === EDITION_UNSTABLE) {
        return maximumEdition;
      }
      if (proto.edition in featureDefaults) {
        return proto.edition;
      }
      throw new Error(`${proto.name}: unsupported edition`);
    default:
      throw new Error(`${proto.name}: unsupported syntax "${proto.syntax}"`);
  }
}
function findFileDependencies(proto, reg) {
  return proto.dependency.map((wantName) => {
    const dep = reg.getFile(wantName);
    if (!dep) {
      throw new Error(`Cannot find ${wantName}, imported by ${proto.name}`);
    }
    return dep;
  });
}
function findEnumSharedPrefix(enumName, values) {
  const prefix = camelToSnakeCase(enumName) + "_";
  for (const value of values) {
    if (!value.name.toLowerCase().startsWith(prefix)) {
      return void 0;
    }
    const shortName = value.name.substring(prefix.length);
    if (shortName.length == 0) {
      return void 0;
    }
    if (/^\d/.test(shortName)) {
      return void 0;
    }
  }
  return prefix;
}
function findEnumValueJsonName(proto) {
  var _a, _b;
  const extensionNumber = 998;
  const fieldNumber = 1;
  let jsonName;
  for (const uf of (_b = (_a = proto.options) === null || _a === void 0 ? void 0 : _a.$unknown) !== null && _b !== void 0 ? _b : []) {
    if (uf.no !== extensionNumber || uf.wireType !== WireType.LengthDelimited) {
      continue;
    }
    const reader = new BinaryReader(new BinaryReader(uf.data).bytes());
    while (reader.pos < reader.len) {
      const [no, wireType] = reader.tag();
      if (no === fieldNumber && wireType === WireType.LengthDelimited) {
        jsonName = reader.string();
      } else {
        reader.skip(wireType, no);
      }
    }
  }
  return jsonName;
}
function camelToSnakeCase(camel) {
  return (camel.substring(0, 1) + camel.substring(1).replace(/[A-Z]/g, (c) => "_" + c)).toLowerCase();
}
function makeTypeName(proto, parent, file) {
  let typeName;
  if (parent) {
    typeName = `${parent.typeName}.${proto.name}`;
  } else if (file.proto.package.length > 0) {
    typeName = `${file.proto.package}.${proto.name}`;
  } else {
    typeName = `${proto.name}`;
  }
  return typeName;
}
function trimLeadingDot(typeName) {
  return typeName.startsWith(".") ? typeName.substring(1) : typeName;
}
function findOneof(proto, allOneofs) {
  if (!unsafeIsSetExplicit(proto, "oneofIndex")) {
    return void 0;
  }
  if (proto.proto3Optional) {
    return void 0;
  }
  const oneof = allOneofs[proto.oneofIndex];
  assert(oneof, `invalid FieldDescriptorProto: oneof #${proto.oneofIndex} for field #${proto.number} not found`);
  return oneof;
}
function getFieldPresence(proto, oneof, isExtension, parent) {
  if (proto.label == LABEL_REQUIRED) {
    return LEGACY_REQUIRED;
  }
  if (proto.label == LABEL_REPEATED) {
    return IMPLICIT2;
  }
  if (!!oneof || proto.proto3Optional) {
    return EXPLICIT;
  }
  if (isExtension) {
    return EXPLICIT;
  }
  const resolved = resolveFeature("fieldPresence", { proto, parent });
  if (resolved == IMPLICIT2 && (proto.type == TYPE_MESSAGE || proto.type == TYPE_GROUP)) {
    return EXPLICIT;
  }
  return resolved;
}
function isPackedField(proto, parent) {
  if (proto.label != LABEL_REPEATED) {
    return false;
  }
  switch (proto.type) {
    case TYPE_STRING:
    case TYPE_BYTES:
    case TYPE_GROUP:
    case TYPE_MESSAGE:
      return false;
  }
  const o = proto.options;
  if (o && unsafeIsSetExplicit(o, "packed")) {
    return o.packed;
  }
  return PACKED == resolveFeature("repeatedFieldEncoding", {
    proto,
    parent
  });
}
function findMapEntryFields(mapEntry) {
  const key = mapEntry.fields.find((f) => f.number === 1);
  const value = mapEntry.fields.find((f) => f.number === 2);
  assert(key && key.fieldKind == "scalar" && key.scalar != ScalarType.BYTES && key.scalar != ScalarType.FLOAT && key.scalar != ScalarType.DOUBLE && value && value.fieldKind != "list" && value.fieldKind != "map");
  return { key, value };
}
function isEnumOpen(desc) {
  var _a;
  return OPEN == resolveFeature("enumType", {
    proto: desc.proto,
    parent: (_a = desc.parent) !== null && _a !== void 0 ? _a : desc.file
  });
}
function isDelimitedEncoding(proto, parent) {
  if (proto.type == TYPE_GROUP) {
    return true;
  }
  return DELIMITED == resolveFeature("messageEncoding", {
    proto,
    parent
  });
}
function isUtf8Validated(proto, parent) {
  return VERIFY == resolveFeature("utf8Validation", {
    proto,
    parent
  });
}
function resolveFeature(name, ref) {
  var _a, _b;
  const featureSet = (_a = ref.proto.options) === null || _a === void 0 ? void 0 : _a.features;
  if (featureSet) {
    const val = featureSet[name];
    if (val != 0) {
      return val;
    }
  }
  if ("kind" in ref) {
    if (ref.kind == "message") {
      return resolveFeature(name, (_b = ref.parent) !== null && _b !== void 0 ? _b : ref.file);
    }
    const editionDefaults = featureDefaults[ref.edition];
    if (!editionDefaults) {
      throw new Error(`feature default for edition ${ref.edition} not found`);
    }
    return editionDefaults[name];
  }
  return resolveFeature(name, ref.parent);
}
function assert(condition, msg) {
  if (!condition) {
    throw new Error(msg);
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/codegenv2/boot.js
function boot(boot2) {
  const root = bootFileDescriptorProto(boot2);
  root.messageType.forEach(restoreJsonNames);
  const reg = createEmbeddedFileRegistry(root, () => void 0);
  return reg.getFile(root.name);
}
function bootFileDescriptorProto(init) {
  const proto = /* @__PURE__ */ Object.create({
    syntax: "",
    edition: 0
  });
  return Object.assign(proto, Object.assign(Object.assign({ $typeName: "google.protobuf.FileDescriptorProto", dependency: [], publicDependency: [], weakDependency: [], optionDependency: [], service: [], extension: [] }, init), { messageType: init.messageType.map(bootDescriptorProto), enumType: init.enumType.map(bootEnumDescriptorProto) }));
}
function bootDescriptorProto(init) {
  var _a, _b, _c, _d, _e, _f, _g, _h;
  const proto = /* @__PURE__ */ Object.create({
    visibility: 0
  });
  return Object.assign(proto, {
    $typeName: "google.protobuf.DescriptorProto",
    name: init.name,
    field: (_b = (_a = init.field) === null || _a === void 0 ? void 0 : _a.map(bootFieldDescriptorProto)) !== null && _b !== void 0 ? _b : [],
    extension: [],
    nestedType: (_d = (_c = init.nestedType) === null || _c === void 0 ? void 0 : _c.map(bootDescriptorProto)) !== null && _d !== void 0 ? _d : [],
    enumType: (_f = (_e = init.enumType) === null || _e === void 0 ? void 0 : _e.map(bootEnumDescriptorProto)) !== null && _f !== void 0 ? _f : [],
    extensionRange: (_h = (_g = init.extensionRange) === null || _g === void 0 ? void 0 : _g.map((e) => Object.assign({ $typeName: "google.protobuf.DescriptorProto.ExtensionRange" }, e))) !== null && _h !== void 0 ? _h : [],
    oneofDecl: [],
    reservedRange: [],
    reservedName: []
  });
}
function bootFieldDescriptorProto(init) {
  const proto = /* @__PURE__ */ Object.create({
    label: 1,
    typeName: "",
    extendee: "",
    defaultValue: "",
    oneofIndex: 0,
    jsonName: "",
    proto3Optional: false
  });
  return Object.assign(proto, Object.assign(Object.assign({ $typeName: "google.protobuf.FieldDescriptorProto" }, init), { options: init.options ? bootFieldOptions(init.options) : void 0 }));
}
function bootFieldOptions(init) {
  var _a, _b, _c;
  const proto = /* @__PURE__ */ Object.create({
    ctype: 0,
    packed: false,
    jstype: 0,
    lazy: false,
    unverifiedLazy: false,
    deprecated: false,
    weak: false,
    debugRedact: false,
    retention: 0
  });
  return Object.assign(proto, Object.assign(Object.assign({ $typeName: "google.protobuf.FieldOptions" }, init), { targets: (_a = init.targets) !== null && _a !== void 0 ? _a : [], editionDefaults: (_c = (_b = init.editionDefaults) === null || _b === void 0 ? void 0 : _b.map((e) => Object.assign({ $typeName: "google.protobuf.FieldOptions.EditionDefault" }, e))) !== null && _c !== void 0 ? _c : [], uninterpretedOption: [] }));
}
function bootEnumDescriptorProto(init) {
  const proto = /* @__PURE__ */ Object.create({
    visibility: 0
  });
  return Object.assign(proto, {
    $typeName: "google.protobuf.EnumDescriptorProto",
    name: init.name,
    reservedName: [],
    reservedRange: [],
    value: init.value.map((e) => Object.assign({ $typeName: "google.protobuf.EnumValueDescriptorProto" }, e))
  });
}

// node_modules/@bufbuild/protobuf/dist/esm/codegenv2/message.js
function messageDesc(file, path, ...paths) {
  return paths.reduce((acc, cur) => acc.nestedMessages[cur], file.messages[path]);
}

// node_modules/@bufbuild/protobuf/dist/esm/codegenv2/enum.js
function enumDesc(file, path, ...paths) {
  if (paths.length == 0) {
    return file.enums[path];
  }
  const e = paths.pop();
  return paths.reduce((acc, cur) => acc.nestedMessages[cur], file.messages[path]).nestedEnums[e];
}

// node_modules/@bufbuild/protobuf/dist/esm/wkt/google/protobuf/descriptor_pb.js
var file_google_protobuf_descriptor = /* @__PURE__ */ boot({ "name": "google/protobuf/descriptor.proto", "package": "google.protobuf", "messageType": [{ "name": "FileDescriptorSet", "field": [{ "name": "file", "number": 1, "type": 11, "label": 3, "typeName": ".google.protobuf.FileDescriptorProto" }], "extensionRange": [{ "start": 536e6, "end": 536000001 }] }, { "name": "FileDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "package", "number": 2, "type": 9, "label": 1 }, { "name": "dependency", "number": 3, "type": 9, "label": 3 }, { "name": "public_dependency", "number": 10, "type": 5, "label": 3 }, { "name": "weak_dependency", "number": 11, "type": 5, "label": 3 }, { "name": "option_dependency", "number": 15, "type": 9, "label": 3 }, { "name": "message_type", "number": 4, "type": 11, "label": 3, "typeName": ".google.protobuf.DescriptorProto" }, { "name": "enum_type", "number": 5, "type": 11, "label": 3, "typeName": ".google.protobuf.EnumDescriptorProto" }, { "name": "service", "number": 6, "type": 11, "label": 3, "typeName": ".google.protobuf.ServiceDescriptorProto" }, { "name": "extension", "number": 7, "type": 11, "label": 3, "typeName": ".google.protobuf.FieldDescriptorProto" }, { "name": "options", "number": 8, "type": 11, "label": 1, "typeName": ".google.protobuf.FileOptions" }, { "name": "source_code_info", "number": 9, "type": 11, "label": 1, "typeName": ".google.protobuf.SourceCodeInfo" }, { "name": "syntax", "number": 12, "type": 9, "label": 1 }, { "name": "edition", "number": 14, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }] }, { "name": "DescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "field", "number": 2, "type": 11, "label": 3, "typeName": ".google.protobuf.FieldDescriptorProto" }, { "name": "extension", "number": 6, "type": 11, "label": 3, "typeName": ".google.protobuf.FieldDescriptorProto" }, { "name": "nested_type", "number": 3, "type": 11, "label": 3, "typeName": ".google.protobuf.DescriptorProto" }, { "name": "enum_type", "number": 4, "type": 11, "label": 3, "typeName": ".google.protobuf.EnumDescriptorProto" }, { "name": "extension_range", "number": 5, "type": 11, "label": 3, "typeName": ".google.protobuf.DescriptorProto.ExtensionRange" }, { "name": "oneof_decl", "number": 8, "type": 11, "label": 3, "typeName": ".google.protobuf.OneofDescriptorProto" }, { "name": "options", "number": 7, "type": 11, "label": 1, "typeName": ".google.protobuf.MessageOptions" }, { "name": "reserved_range", "number": 9, "type": 11, "label": 3, "typeName": ".google.protobuf.DescriptorProto.ReservedRange" }, { "name": "reserved_name", "number": 10, "type": 9, "label": 3 }, { "name": "visibility", "number": 11, "type": 14, "label": 1, "typeName": ".google.protobuf.SymbolVisibility" }], "nestedType": [{ "name": "ExtensionRange", "field": [{ "name": "start", "number": 1, "type": 5, "label": 1 }, { "name": "end", "number": 2, "type": 5, "label": 1 }, { "name": "options", "number": 3, "type": 11, "label": 1, "typeName": ".google.protobuf.ExtensionRangeOptions" }] }, { "name": "ReservedRange", "field": [{ "name": "start", "number": 1, "type": 5, "label": 1 }, { "name": "end", "number": 2, "type": 5, "label": 1 }] }] }, { "name": "ExtensionRangeOptions", "field": [{ "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }, { "name": "declaration", "number": 2, "type": 11, "label": 3, "typeName": ".google.protobuf.ExtensionRangeOptions.Declaration", "options": { "retention": 2 } }, { "name": "features", "number": 50, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "verification", "number": 3, "type": 14, "label": 1, "typeName": ".google.protobuf.ExtensionRangeOptions.VerificationState", "defaultValue": "UNVERIFIED", "options": { "retention": 2 } }], "nestedType": [{ "name": "Declaration", "field": [{ "name": "number", "number": 1, "type": 5, "label": 1 }, { "name": "full_name", "number": 2, "type": 9, "label": 1 }, { "name": "type", "number": 3, "type": 9, "label": 1 }, { "name": "reserved", "number": 5, "type": 8, "label": 1 }, { "name": "repeated", "number": 6, "type": 8, "label": 1 }] }], "enumType": [{ "name": "VerificationState", "value": [{ "name": "DECLARATION", "number": 0 }, { "name": "UNVERIFIED", "number": 1 }] }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "FieldDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "number", "number": 3, "type": 5, "label": 1 }, { "name": "label", "number": 4, "type": 14, "label": 1, "typeName": ".google.protobuf.FieldDescriptorProto.Label" }, { "name": "type", "number": 5, "type": 14, "label": 1, "typeName": ".google.protobuf.FieldDescriptorProto.Type" }, { "name": "type_name", "number": 6, "type": 9, "label": 1 }, { "name": "extendee", "number": 2, "type": 9, "label": 1 }, { "name": "default_value", "number": 7, "type": 9, "label": 1 }, { "name": "oneof_index", "number": 9, "type": 5, "label": 1 }, { "name": "json_name", "number": 10, "type": 9, "label": 1 }, { "name": "options", "number": 8, "type": 11, "label": 1, "typeName": ".google.protobuf.FieldOptions" }, { "name": "proto3_optional", "number": 17, "type": 8, "label": 1 }], "enumType": [{ "name": "Type", "value": [{ "name": "TYPE_DOUBLE", "number": 1 }, { "name": "TYPE_FLOAT", "number": 2 }, { "name": "TYPE_INT64", "number": 3 }, { "name": "TYPE_UINT64", "number": 4 }, { "name": "TYPE_INT32", "number": 5 }, { "name": "TYPE_FIXED64", "number": 6 }, { "name": "TYPE_FIXED32", "number": 7 }, { "name": "TYPE_BOOL", "number": 8 }, { "name": "TYPE_STRING", "number": 9 }, { "name": "TYPE_GROUP", "number": 10 }, { "name": "TYPE_MESSAGE", "number": 11 }, { "name": "TYPE_BYTES", "number": 12 }, { "name": "TYPE_UINT32", "number": 13 }, { "name": "TYPE_ENUM", "number": 14 }, { "name": "TYPE_SFIXED32", "number": 15 }, { "name": "TYPE_SFIXED64", "number": 16 }, { "name": "TYPE_SINT32", "number": 17 }, { "name": "TYPE_SINT64", "number": 18 }] }, { "name": "Label", "value": [{ "name": "LABEL_OPTIONAL", "number": 1 }, { "name": "LABEL_REPEATED", "number": 3 }, { "name": "LABEL_REQUIRED", "number": 2 }] }] }, { "name": "OneofDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "options", "number": 2, "type": 11, "label": 1, "typeName": ".google.protobuf.OneofOptions" }] }, { "name": "EnumDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "value", "number": 2, "type": 11, "label": 3, "typeName": ".google.protobuf.EnumValueDescriptorProto" }, { "name": "options", "number": 3, "type": 11, "label": 1, "typeName": ".google.protobuf.EnumOptions" }, { "name": "reserved_range", "number": 4, "type": 11, "label": 3, "typeName": ".google.protobuf.EnumDescriptorProto.EnumReservedRange" }, { "name": "reserved_name", "number": 5, "type": 9, "label": 3 }, { "name": "visibility", "number": 6, "type": 14, "label": 1, "typeName": ".google.protobuf.SymbolVisibility" }], "nestedType": [{ "name": "EnumReservedRange", "field": [{ "name": "start", "number": 1, "type": 5, "label": 1 }, { "name": "end", "number": 2, "type": 5, "label": 1 }] }] }, { "name": "EnumValueDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "number", "number": 2, "type": 5, "label": 1 }, { "name": "options", "number": 3, "type": 11, "label": 1, "typeName": ".google.protobuf.EnumValueOptions" }] }, { "name": "ServiceDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "method", "number": 2, "type": 11, "label": 3, "typeName": ".google.protobuf.MethodDescriptorProto" }, { "name": "options", "number": 3, "type": 11, "label": 1, "typeName": ".google.protobuf.ServiceOptions" }] }, { "name": "MethodDescriptorProto", "field": [{ "name": "name", "number": 1, "type": 9, "label": 1 }, { "name": "input_type", "number": 2, "type": 9, "label": 1 }, { "name": "output_type", "number": 3, "type": 9, "label": 1 }, { "name": "options", "number": 4, "type": 11, "label": 1, "typeName": ".google.protobuf.MethodOptions" }, { "name": "client_streaming", "number": 5, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "server_streaming", "number": 6, "type": 8, "label": 1, "defaultValue": "false" }] }, { "name": "FileOptions", "field": [{ "name": "java_package", "number": 1, "type": 9, "label": 1 }, { "name": "java_outer_classname", "number": 8, "type": 9, "label": 1 }, { "name": "java_multiple_files", "number": 10, "type": 8, "label": 1, "defaultValue": "false", "options": {} }, { "name": "java_generate_equals_and_hash", "number": 20, "type": 8, "label": 1, "options": { "deprecated": true } }, { "name": "java_string_check_utf8", "number": 27, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "optimize_for", "number": 9, "type": 14, "label": 1, "typeName": ".google.protobuf.FileOptions.OptimizeMode", "defaultValue": "SPEED" }, { "name": "go_package", "number": 11, "type": 9, "label": 1 }, { "name": "cc_generic_services", "number": 16, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "java_generic_services", "number": 17, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "py_generic_services", "number": 18, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "deprecated", "number": 23, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "cc_enable_arenas", "number": 31, "type": 8, "label": 1, "defaultValue": "true", "options": {} }, { "name": "objc_class_prefix", "number": 36, "type": 9, "label": 1 }, { "name": "csharp_namespace", "number": 37, "type": 9, "label": 1 }, { "name": "swift_prefix", "number": 39, "type": 9, "label": 1 }, { "name": "php_class_prefix", "number": 40, "type": 9, "label": 1 }, { "name": "php_namespace", "number": 41, "type": 9, "label": 1 }, { "name": "php_metadata_namespace", "number": 44, "type": 9, "label": 1 }, { "name": "ruby_package", "number": 45, "type": 9, "label": 1 }, { "name": "features", "number": 50, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "enumType": [{ "name": "OptimizeMode", "value": [{ "name": "SPEED", "number": 1 }, { "name": "CODE_SIZE", "number": 2 }, { "name": "LITE_RUNTIME", "number": 3 }] }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "MessageOptions", "field": [{ "name": "message_set_wire_format", "number": 1, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "no_standard_descriptor_accessor", "number": 2, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "deprecated", "number": 3, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "map_entry", "number": 7, "type": 8, "label": 1 }, { "name": "deprecated_legacy_json_field_conflicts", "number": 11, "type": 8, "label": 1, "options": { "deprecated": true } }, { "name": "features", "number": 12, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "FieldOptions", "field": [{ "name": "ctype", "number": 1, "type": 14, "label": 1, "typeName": ".google.protobuf.FieldOptions.CType", "defaultValue": "STRING" }, { "name": "packed", "number": 2, "type": 8, "label": 1 }, { "name": "jstype", "number": 6, "type": 14, "label": 1, "typeName": ".google.protobuf.FieldOptions.JSType", "defaultValue": "JS_NORMAL" }, { "name": "lazy", "number": 5, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "unverified_lazy", "number": 15, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "deprecated", "number": 3, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "weak", "number": 10, "type": 8, "label": 1, "defaultValue": "false", "options": { "deprecated": true } }, { "name": "debug_redact", "number": 16, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "retention", "number": 17, "type": 14, "label": 1, "typeName": ".google.protobuf.FieldOptions.OptionRetention" }, { "name": "targets", "number": 19, "type": 14, "label": 3, "typeName": ".google.protobuf.FieldOptions.OptionTargetType" }, { "name": "edition_defaults", "number": 20, "type": 11, "label": 3, "typeName": ".google.protobuf.FieldOptions.EditionDefault" }, { "name": "features", "number": 21, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "feature_support", "number": 22, "type": 11, "label": 1, "typeName": ".google.protobuf.FieldOptions.FeatureSupport" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "nestedType": [{ "name": "EditionDefault", "field": [{ "name": "edition", "number": 3, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "value", "number": 2, "type": 9, "label": 1 }] }, { "name": "FeatureSupport", "field": [{ "name": "edition_introduced", "number": 1, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "edition_deprecated", "number": 2, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "deprecation_warning", "number": 3, "type": 9, "label": 1 }, { "name": "edition_removed", "number": 4, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "removal_error", "number": 5, "type": 9, "label": 1 }] }], "enumType": [{ "name": "CType", "value": [{ "name": "STRING", "number": 0 }, { "name": "CORD", "number": 1 }, { "name": "STRING_PIECE", "number": 2 }] }, { "name": "JSType", "value": [{ "name": "JS_NORMAL", "number": 0 }, { "name": "JS_STRING", "number": 1 }, { "name": "JS_NUMBER", "number": 2 }] }, { "name": "OptionRetention", "value": [{ "name": "RETENTION_UNKNOWN", "number": 0 }, { "name": "RETENTION_RUNTIME", "number": 1 }, { "name": "RETENTION_SOURCE", "number": 2 }] }, { "name": "OptionTargetType", "value": [{ "name": "TARGET_TYPE_UNKNOWN", "number": 0 }, { "name": "TARGET_TYPE_FILE", "number": 1 }, { "name": "TARGET_TYPE_EXTENSION_RANGE", "number": 2 }, { "name": "TARGET_TYPE_MESSAGE", "number": 3 }, { "name": "TARGET_TYPE_FIELD", "number": 4 }, { "name": "TARGET_TYPE_ONEOF", "number": 5 }, { "name": "TARGET_TYPE_ENUM", "number": 6 }, { "name": "TARGET_TYPE_ENUM_ENTRY", "number": 7 }, { "name": "TARGET_TYPE_SERVICE", "number": 8 }, { "name": "TARGET_TYPE_METHOD", "number": 9 }] }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "OneofOptions", "field": [{ "name": "features", "number": 1, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "EnumOptions", "field": [{ "name": "allow_alias", "number": 2, "type": 8, "label": 1 }, { "name": "deprecated", "number": 3, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "deprecated_legacy_json_field_conflicts", "number": 6, "type": 8, "label": 1, "options": { "deprecated": true } }, { "name": "features", "number": 7, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "EnumValueOptions", "field": [{ "name": "deprecated", "number": 1, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "features", "number": 2, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "debug_redact", "number": 3, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "feature_support", "number": 4, "type": 11, "label": 1, "typeName": ".google.protobuf.FieldOptions.FeatureSupport" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "ServiceOptions", "field": [{ "name": "features", "number": 34, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "deprecated", "number": 33, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "MethodOptions", "field": [{ "name": "deprecated", "number": 33, "type": 8, "label": 1, "defaultValue": "false" }, { "name": "idempotency_level", "number": 34, "type": 14, "label": 1, "typeName": ".google.protobuf.MethodOptions.IdempotencyLevel", "defaultValue": "IDEMPOTENCY_UNKNOWN" }, { "name": "features", "number": 35, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "uninterpreted_option", "number": 999, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption" }], "enumType": [{ "name": "IdempotencyLevel", "value": [{ "name": "IDEMPOTENCY_UNKNOWN", "number": 0 }, { "name": "NO_SIDE_EFFECTS", "number": 1 }, { "name": "IDEMPOTENT", "number": 2 }] }], "extensionRange": [{ "start": 990, "end": 999 }, { "start": 1e3, "end": 536870912 }] }, { "name": "UninterpretedOption", "field": [{ "name": "name", "number": 2, "type": 11, "label": 3, "typeName": ".google.protobuf.UninterpretedOption.NamePart" }, { "name": "identifier_value", "number": 3, "type": 9, "label": 1 }, { "name": "positive_int_value", "number": 4, "type": 4, "label": 1 }, { "name": "negative_int_value", "number": 5, "type": 3, "label": 1 }, { "name": "double_value", "number": 6, "type": 1, "label": 1 }, { "name": "string_value", "number": 7, "type": 12, "label": 1 }, { "name": "aggregate_value", "number": 8, "type": 9, "label": 1 }], "nestedType": [{ "name": "NamePart", "field": [{ "name": "name_part", "number": 1, "type": 9, "label": 2 }, { "name": "is_extension", "number": 2, "type": 8, "label": 2 }] }] }, { "name": "FeatureSet", "field": [{ "name": "field_presence", "number": 1, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.FieldPresence", "options": { "retention": 1, "targets": [4, 1], "editionDefaults": [{ "value": "EXPLICIT", "edition": 900 }, { "value": "IMPLICIT", "edition": 999 }, { "value": "EXPLICIT", "edition": 1e3 }] } }, { "name": "enum_type", "number": 2, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.EnumType", "options": { "retention": 1, "targets": [6, 1], "editionDefaults": [{ "value": "CLOSED", "edition": 900 }, { "value": "OPEN", "edition": 999 }] } }, { "name": "repeated_field_encoding", "number": 3, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.RepeatedFieldEncoding", "options": { "retention": 1, "targets": [4, 1], "editionDefaults": [{ "value": "EXPANDED", "edition": 900 }, { "value": "PACKED", "edition": 999 }] } }, { "name": "utf8_validation", "number": 4, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.Utf8Validation", "options": { "retention": 1, "targets": [4, 1], "editionDefaults": [{ "value": "NONE", "edition": 900 }, { "value": "VERIFY", "edition": 999 }] } }, { "name": "message_encoding", "number": 5, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.MessageEncoding", "options": { "retention": 1, "targets": [4, 1], "editionDefaults": [{ "value": "LENGTH_PREFIXED", "edition": 900 }] } }, { "name": "json_format", "number": 6, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.JsonFormat", "options": { "retention": 1, "targets": [3, 6, 1], "editionDefaults": [{ "value": "LEGACY_BEST_EFFORT", "edition": 900 }, { "value": "ALLOW", "edition": 999 }] } }, { "name": "enforce_naming_style", "number": 7, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.EnforceNamingStyle", "options": { "retention": 2, "targets": [1, 2, 3, 4, 5, 6, 7, 8, 9], "editionDefaults": [{ "value": "STYLE_LEGACY", "edition": 900 }, { "value": "STYLE2024", "edition": 1001 }, { "value": "STYLE2026", "edition": 1002 }] } }, { "name": "default_symbol_visibility", "number": 8, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.VisibilityFeature.DefaultSymbolVisibility", "options": { "retention": 2, "targets": [1], "editionDefaults": [{ "value": "EXPORT_ALL", "edition": 900 }, { "value": "EXPORT_TOP_LEVEL", "edition": 1001 }, { "value": "STRICT", "edition": 1002 }] } }, { "name": "enforce_proto_limits", "number": 9, "type": 14, "label": 1, "typeName": ".google.protobuf.FeatureSet.ProtoLimitsFeature.EnforceProtoLimits", "options": { "retention": 2, "targets": [6, 3, 4, 5], "editionDefaults": [{ "value": "LEGACY_NO_EXPLICIT_LIMITS", "edition": 900 }, { "value": "PROTO_LIMITS2026", "edition": 1002 }] } }], "nestedType": [{ "name": "VisibilityFeature", "enumType": [{ "name": "DefaultSymbolVisibility", "value": [{ "name": "DEFAULT_SYMBOL_VISIBILITY_UNKNOWN", "number": 0 }, { "name": "EXPORT_ALL", "number": 1 }, { "name": "EXPORT_TOP_LEVEL", "number": 2 }, { "name": "LOCAL_ALL", "number": 3 }, { "name": "STRICT", "number": 4 }] }] }, { "name": "ProtoLimitsFeature", "enumType": [{ "name": "EnforceProtoLimits", "value": [{ "name": "PROTO_LIMITS_UNKNOWN", "number": 0 }, { "name": "LEGACY_NO_EXPLICIT_LIMITS", "number": 1 }, { "name": "PROTO_LIMITS2026", "number": 2 }] }] }], "enumType": [{ "name": "FieldPresence", "value": [{ "name": "FIELD_PRESENCE_UNKNOWN", "number": 0 }, { "name": "EXPLICIT", "number": 1 }, { "name": "IMPLICIT", "number": 2 }, { "name": "LEGACY_REQUIRED", "number": 3 }] }, { "name": "EnumType", "value": [{ "name": "ENUM_TYPE_UNKNOWN", "number": 0 }, { "name": "OPEN", "number": 1 }, { "name": "CLOSED", "number": 2 }] }, { "name": "RepeatedFieldEncoding", "value": [{ "name": "REPEATED_FIELD_ENCODING_UNKNOWN", "number": 0 }, { "name": "PACKED", "number": 1 }, { "name": "EXPANDED", "number": 2 }] }, { "name": "Utf8Validation", "value": [{ "name": "UTF8_VALIDATION_UNKNOWN", "number": 0 }, { "name": "VERIFY", "number": 2 }, { "name": "NONE", "number": 3 }] }, { "name": "MessageEncoding", "value": [{ "name": "MESSAGE_ENCODING_UNKNOWN", "number": 0 }, { "name": "LENGTH_PREFIXED", "number": 1 }, { "name": "DELIMITED", "number": 2 }] }, { "name": "JsonFormat", "value": [{ "name": "JSON_FORMAT_UNKNOWN", "number": 0 }, { "name": "ALLOW", "number": 1 }, { "name": "LEGACY_BEST_EFFORT", "number": 2 }] }, { "name": "EnforceNamingStyle", "value": [{ "name": "ENFORCE_NAMING_STYLE_UNKNOWN", "number": 0 }, { "name": "STYLE2024", "number": 1 }, { "name": "STYLE_LEGACY", "number": 2 }, { "name": "STYLE2026", "number": 3 }] }], "extensionRange": [{ "start": 1e3, "end": 9995 }, { "start": 9995, "end": 1e4 }, { "start": 1e4, "end": 10001 }] }, { "name": "FeatureSetDefaults", "field": [{ "name": "defaults", "number": 1, "type": 11, "label": 3, "typeName": ".google.protobuf.FeatureSetDefaults.FeatureSetEditionDefault" }, { "name": "minimum_edition", "number": 4, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "maximum_edition", "number": 5, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }], "nestedType": [{ "name": "FeatureSetEditionDefault", "field": [{ "name": "edition", "number": 3, "type": 14, "label": 1, "typeName": ".google.protobuf.Edition" }, { "name": "overridable_features", "number": 4, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }, { "name": "fixed_features", "number": 5, "type": 11, "label": 1, "typeName": ".google.protobuf.FeatureSet" }] }] }, { "name": "SourceCodeInfo", "field": [{ "name": "location", "number": 1, "type": 11, "label": 3, "typeName": ".google.protobuf.SourceCodeInfo.Location" }], "nestedType": [{ "name": "Location", "field": [{ "name": "path", "number": 1, "type": 5, "label": 3, "options": { "packed": true } }, { "name": "span", "number": 2, "type": 5, "label": 3, "options": { "packed": true } }, { "name": "leading_comments", "number": 3, "type": 9, "label": 1 }, { "name": "trailing_comments", "number": 4, "type": 9, "label": 1 }, { "name": "leading_detached_comments", "number": 6, "type": 9, "label": 3 }] }], "extensionRange": [{ "start": 536e6, "end": 536000001 }] }, { "name": "GeneratedCodeInfo", "field": [{ "name": "annotation", "number": 1, "type": 11, "label": 3, "typeName": ".google.protobuf.GeneratedCodeInfo.Annotation" }], "nestedType": [{ "name": "Annotation", "field": [{ "name": "path", "number": 1, "type": 5, "label": 3, "options": { "packed": true } }, { "name": "source_file", "number": 2, "type": 9, "label": 1 }, { "name": "begin", "number": 3, "type": 5, "label": 1 }, { "name": "end", "number": 4, "type": 5, "label": 1 }, { "name": "semantic", "number": 5, "type": 14, "label": 1, "typeName": ".google.protobuf.GeneratedCodeInfo.Annotation.Semantic" }], "enumType": [{ "name": "Semantic", "value": [{ "name": "NONE", "number": 0 }, { "name": "SET", "number": 1 }, { "name": "ALIAS", "number": 2 }] }] }] }], "enumType": [{ "name": "Edition", "value": [{ "name": "EDITION_UNKNOWN", "number": 0 }, { "name": "EDITION_LEGACY", "number": 900 }, { "name": "EDITION_PROTO2", "number": 998 }, { "name": "EDITION_PROTO3", "number": 999 }, { "name": "EDITION_2023", "number": 1e3 }, { "name": "EDITION_2024", "number": 1001 }, { "name": "EDITION_2026", "number": 1002 }, { "name": "EDITION_UNSTABLE", "number": 9999 }, { "name": "EDITION_1_TEST_ONLY", "number": 1 }, { "name": "EDITION_2_TEST_ONLY", "number": 2 }, { "name": "EDITION_99997_TEST_ONLY", "number": 99997 }, { "name": "EDITION_99998_TEST_ONLY", "number": 99998 }, { "name": "EDITION_99999_TEST_ONLY", "number": 99999 }, { "name": "EDITION_MAX", "number": 2147483647 }] }, { "name": "SymbolVisibility", "value": [{ "name": "VISIBILITY_UNSET", "number": 0 }, { "name": "VISIBILITY_LOCAL", "number": 1 }, { "name": "VISIBILITY_EXPORT", "number": 2 }] }] });
var FileDescriptorProtoSchema = /* @__PURE__ */ messageDesc(file_google_protobuf_descriptor, 1);
var ExtensionRangeOptions_VerificationState;
(function(ExtensionRangeOptions_VerificationState2) {
  ExtensionRangeOptions_VerificationState2[ExtensionRangeOptions_VerificationState2["DECLARATION"] = 0] = "DECLARATION";
  ExtensionRangeOptions_VerificationState2[ExtensionRangeOptions_VerificationState2["UNVERIFIED"] = 1] = "UNVERIFIED";
})(ExtensionRangeOptions_VerificationState || (ExtensionRangeOptions_VerificationState = {}));
var FieldDescriptorProto_Type;
(function(FieldDescriptorProto_Type2) {
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["DOUBLE"] = 1] = "DOUBLE";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["FLOAT"] = 2] = "FLOAT";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["INT64"] = 3] = "INT64";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["UINT64"] = 4] = "UINT64";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["INT32"] = 5] = "INT32";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["FIXED64"] = 6] = "FIXED64";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["FIXED32"] = 7] = "FIXED32";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["BOOL"] = 8] = "BOOL";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["STRING"] = 9] = "STRING";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["GROUP"] = 10] = "GROUP";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["MESSAGE"] = 11] = "MESSAGE";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["BYTES"] = 12] = "BYTES";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["UINT32"] = 13] = "UINT32";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["ENUM"] = 14] = "ENUM";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["SFIXED32"] = 15] = "SFIXED32";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["SFIXED64"] = 16] = "SFIXED64";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["SINT32"] = 17] = "SINT32";
  FieldDescriptorProto_Type2[FieldDescriptorProto_Type2["SINT64"] = 18] = "SINT64";
})(FieldDescriptorProto_Type || (FieldDescriptorProto_Type = {}));
var FieldDescriptorProto_Label;
(function(FieldDescriptorProto_Label2) {
  FieldDescriptorProto_Label2[FieldDescriptorProto_Label2["OPTIONAL"] = 1] = "OPTIONAL";
  FieldDescriptorProto_Label2[FieldDescriptorProto_Label2["REPEATED"] = 3] = "REPEATED";
  FieldDescriptorProto_Label2[FieldDescriptorProto_Label2["REQUIRED"] = 2] = "REQUIRED";
})(FieldDescriptorProto_Label || (FieldDescriptorProto_Label = {}));
var FileOptions_OptimizeMode;
(function(FileOptions_OptimizeMode2) {
  FileOptions_OptimizeMode2[FileOptions_OptimizeMode2["SPEED"] = 1] = "SPEED";
  FileOptions_OptimizeMode2[FileOptions_OptimizeMode2["CODE_SIZE"] = 2] = "CODE_SIZE";
  FileOptions_OptimizeMode2[FileOptions_OptimizeMode2["LITE_RUNTIME"] = 3] = "LITE_RUNTIME";
})(FileOptions_OptimizeMode || (FileOptions_OptimizeMode = {}));
var FieldOptions_CType;
(function(FieldOptions_CType2) {
  FieldOptions_CType2[FieldOptions_CType2["STRING"] = 0] = "STRING";
  FieldOptions_CType2[FieldOptions_CType2["CORD"] = 1] = "CORD";
  FieldOptions_CType2[FieldOptions_CType2["STRING_PIECE"] = 2] = "STRING_PIECE";
})(FieldOptions_CType || (FieldOptions_CType = {}));
var FieldOptions_JSType;
(function(FieldOptions_JSType2) {
  FieldOptions_JSType2[FieldOptions_JSType2["JS_NORMAL"] = 0] = "JS_NORMAL";
  FieldOptions_JSType2[FieldOptions_JSType2["JS_STRING"] = 1] = "JS_STRING";
  FieldOptions_JSType2[FieldOptions_JSType2["JS_NUMBER"] = 2] = "JS_NUMBER";
})(FieldOptions_JSType || (FieldOptions_JSType = {}));
var FieldOptions_OptionRetention;
(function(FieldOptions_OptionRetention2) {
  FieldOptions_OptionRetention2[FieldOptions_OptionRetention2["RETENTION_UNKNOWN"] = 0] = "RETENTION_UNKNOWN";
  FieldOptions_OptionRetention2[FieldOptions_OptionRetention2["RETENTION_RUNTIME"] = 1] = "RETENTION_RUNTIME";
  FieldOptions_OptionRetention2[FieldOptions_OptionRetention2["RETENTION_SOURCE"] = 2] = "RETENTION_SOURCE";
})(FieldOptions_OptionRetention || (FieldOptions_OptionRetention = {}));
var FieldOptions_OptionTargetType;
(function(FieldOptions_OptionTargetType2) {
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_UNKNOWN"] = 0] = "TARGET_TYPE_UNKNOWN";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_FILE"] = 1] = "TARGET_TYPE_FILE";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_EXTENSION_RANGE"] = 2] = "TARGET_TYPE_EXTENSION_RANGE";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_MESSAGE"] = 3] = "TARGET_TYPE_MESSAGE";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_FIELD"] = 4] = "TARGET_TYPE_FIELD";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_ONEOF"] = 5] = "TARGET_TYPE_ONEOF";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_ENUM"] = 6] = "TARGET_TYPE_ENUM";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_ENUM_ENTRY"] = 7] = "TARGET_TYPE_ENUM_ENTRY";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_SERVICE"] = 8] = "TARGET_TYPE_SERVICE";
  FieldOptions_OptionTargetType2[FieldOptions_OptionTargetType2["TARGET_TYPE_METHOD"] = 9] = "TARGET_TYPE_METHOD";
})(FieldOptions_OptionTargetType || (FieldOptions_OptionTargetType = {}));
var MethodOptions_IdempotencyLevel;
(function(MethodOptions_IdempotencyLevel2) {
  MethodOptions_IdempotencyLevel2[MethodOptions_IdempotencyLevel2["IDEMPOTENCY_UNKNOWN"] = 0] = "IDEMPOTENCY_UNKNOWN";
  MethodOptions_IdempotencyLevel2[MethodOptions_IdempotencyLevel2["NO_SIDE_EFFECTS"] = 1] = "NO_SIDE_EFFECTS";
  MethodOptions_IdempotencyLevel2[MethodOptions_IdempotencyLevel2["IDEMPOTENT"] = 2] = "IDEMPOTENT";
})(MethodOptions_IdempotencyLevel || (MethodOptions_IdempotencyLevel = {}));
var FeatureSet_VisibilityFeature_DefaultSymbolVisibility;
(function(FeatureSet_VisibilityFeature_DefaultSymbolVisibility2) {
  FeatureSet_VisibilityFeature_DefaultSymbolVisibility2[FeatureSet_VisibilityFeature_DefaultSymbolVisibility2["DEFAULT_SYMBOL_VISIBILITY_UNKNOWN"] = 0] = "DEFAULT_SYMBOL_VISIBILITY_UNKNOWN";
  FeatureSet_VisibilityFeature_DefaultSymbolVisibility2[FeatureSet_VisibilityFeature_DefaultSymbolVisibility2["EXPORT_ALL"] = 1] = "EXPORT_ALL";
  FeatureSet_VisibilityFeature_DefaultSymbolVisibility2[FeatureSet_VisibilityFeature_DefaultSymbolVisibility2["EXPORT_TOP_LEVEL"] = 2] = "EXPORT_TOP_LEVEL";
  FeatureSet_VisibilityFeature_DefaultSymbolVisibility2[FeatureSet_VisibilityFeature_DefaultSymbolVisibility2["LOCAL_ALL"] = 3] = "LOCAL_ALL";
  FeatureSet_VisibilityFeature_DefaultSymbolVisibility2[FeatureSet_VisibilityFeature_DefaultSymbolVisibility2["STRICT"] = 4] = "STRICT";
})(FeatureSet_VisibilityFeature_DefaultSymbolVisibility || (FeatureSet_VisibilityFeature_DefaultSymbolVisibility = {}));
var FeatureSet_ProtoLimitsFeature_EnforceProtoLimits;
(function(FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2) {
  FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2[FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2["PROTO_LIMITS_UNKNOWN"] = 0] = "PROTO_LIMITS_UNKNOWN";
  FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2[FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2["LEGACY_NO_EXPLICIT_LIMITS"] = 1] = "LEGACY_NO_EXPLICIT_LIMITS";
  FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2[FeatureSet_ProtoLimitsFeature_EnforceProtoLimits2["PROTO_LIMITS2026"] = 2] = "PROTO_LIMITS2026";
})(FeatureSet_ProtoLimitsFeature_EnforceProtoLimits || (FeatureSet_ProtoLimitsFeature_EnforceProtoLimits = {}));
var FeatureSet_FieldPresence;
(function(FeatureSet_FieldPresence2) {
  FeatureSet_FieldPresence2[FeatureSet_FieldPresence2["FIELD_PRESENCE_UNKNOWN"] = 0] = "FIELD_PRESENCE_UNKNOWN";
  FeatureSet_FieldPresence2[FeatureSet_FieldPresence2["EXPLICIT"] = 1] = "EXPLICIT";
  FeatureSet_FieldPresence2[FeatureSet_FieldPresence2["IMPLICIT"] = 2] = "IMPLICIT";
  FeatureSet_FieldPresence2[FeatureSet_FieldPresence2["LEGACY_REQUIRED"] = 3] = "LEGACY_REQUIRED";
})(FeatureSet_FieldPresence || (FeatureSet_FieldPresence = {}));
var FeatureSet_EnumType;
(function(FeatureSet_EnumType2) {
  FeatureSet_EnumType2[FeatureSet_EnumType2["ENUM_TYPE_UNKNOWN"] = 0] = "ENUM_TYPE_UNKNOWN";
  FeatureSet_EnumType2[FeatureSet_EnumType2["OPEN"] = 1] = "OPEN";
  FeatureSet_EnumType2[FeatureSet_EnumType2["CLOSED"] = 2] = "CLOSED";
})(FeatureSet_EnumType || (FeatureSet_EnumType = {}));
var FeatureSet_RepeatedFieldEncoding;
(function(FeatureSet_RepeatedFieldEncoding2) {
  FeatureSet_RepeatedFieldEncoding2[FeatureSet_RepeatedFieldEncoding2["REPEATED_FIELD_ENCODING_UNKNOWN"] = 0] = "REPEATED_FIELD_ENCODING_UNKNOWN";
  FeatureSet_RepeatedFieldEncoding2[FeatureSet_RepeatedFieldEncoding2["PACKED"] = 1] = "PACKED";
  FeatureSet_RepeatedFieldEncoding2[FeatureSet_RepeatedFieldEncoding2["EXPANDED"] = 2] = "EXPANDED";
})(FeatureSet_RepeatedFieldEncoding || (FeatureSet_RepeatedFieldEncoding = {}));
var FeatureSet_Utf8Validation;
(function(FeatureSet_Utf8Validation2) {
  FeatureSet_Utf8Validation2[FeatureSet_Utf8Validation2["UTF8_VALIDATION_UNKNOWN"] = 0] = "UTF8_VALIDATION_UNKNOWN";
  FeatureSet_Utf8Validation2[FeatureSet_Utf8Validation2["VERIFY"] = 2] = "VERIFY";
  FeatureSet_Utf8Validation2[FeatureSet_Utf8Validation2["NONE"] = 3] = "NONE";
})(FeatureSet_Utf8Validation || (FeatureSet_Utf8Validation = {}));
var FeatureSet_MessageEncoding;
(function(FeatureSet_MessageEncoding2) {
  FeatureSet_MessageEncoding2[FeatureSet_MessageEncoding2["MESSAGE_ENCODING_UNKNOWN"] = 0] = "MESSAGE_ENCODING_UNKNOWN";
  FeatureSet_MessageEncoding2[FeatureSet_MessageEncoding2["LENGTH_PREFIXED"] = 1] = "LENGTH_PREFIXED";
  FeatureSet_MessageEncoding2[FeatureSet_MessageEncoding2["DELIMITED"] = 2] = "DELIMITED";
})(FeatureSet_MessageEncoding || (FeatureSet_MessageEncoding = {}));
var FeatureSet_JsonFormat;
(function(FeatureSet_JsonFormat2) {
  FeatureSet_JsonFormat2[FeatureSet_JsonFormat2["JSON_FORMAT_UNKNOWN"] = 0] = "JSON_FORMAT_UNKNOWN";
  FeatureSet_JsonFormat2[FeatureSet_JsonFormat2["ALLOW"] = 1] = "ALLOW";
  FeatureSet_JsonFormat2[FeatureSet_JsonFormat2["LEGACY_BEST_EFFORT"] = 2] = "LEGACY_BEST_EFFORT";
})(FeatureSet_JsonFormat || (FeatureSet_JsonFormat = {}));
var FeatureSet_EnforceNamingStyle;
(function(FeatureSet_EnforceNamingStyle2) {
  FeatureSet_EnforceNamingStyle2[FeatureSet_EnforceNamingStyle2["ENFORCE_NAMING_STYLE_UNKNOWN"] = 0] = "ENFORCE_NAMING_STYLE_UNKNOWN";
  FeatureSet_EnforceNamingStyle2[FeatureSet_EnforceNamingStyle2["STYLE2024"] = 1] = "STYLE2024";
  FeatureSet_EnforceNamingStyle2[FeatureSet_EnforceNamingStyle2["STYLE_LEGACY"] = 2] = "STYLE_LEGACY";
  FeatureSet_EnforceNamingStyle2[FeatureSet_EnforceNamingStyle2["STYLE2026"] = 3] = "STYLE2026";
})(FeatureSet_EnforceNamingStyle || (FeatureSet_EnforceNamingStyle = {}));
var GeneratedCodeInfo_Annotation_Semantic;
(function(GeneratedCodeInfo_Annotation_Semantic2) {
  GeneratedCodeInfo_Annotation_Semantic2[GeneratedCodeInfo_Annotation_Semantic2["NONE"] = 0] = "NONE";
  GeneratedCodeInfo_Annotation_Semantic2[GeneratedCodeInfo_Annotation_Semantic2["SET"] = 1] = "SET";
  GeneratedCodeInfo_Annotation_Semantic2[GeneratedCodeInfo_Annotation_Semantic2["ALIAS"] = 2] = "ALIAS";
})(GeneratedCodeInfo_Annotation_Semantic || (GeneratedCodeInfo_Annotation_Semantic = {}));
var Edition;
(function(Edition2) {
  Edition2[Edition2["EDITION_UNKNOWN"] = 0] = "EDITION_UNKNOWN";
  Edition2[Edition2["EDITION_LEGACY"] = 900] = "EDITION_LEGACY";
  Edition2[Edition2["EDITION_PROTO2"] = 998] = "EDITION_PROTO2";
  Edition2[Edition2["EDITION_PROTO3"] = 999] = "EDITION_PROTO3";
  Edition2[Edition2["EDITION_2023"] = 1e3] = "EDITION_2023";
  Edition2[Edition2["EDITION_2024"] = 1001] = "EDITION_2024";
  Edition2[Edition2["EDITION_2026"] = 1002] = "EDITION_2026";
  Edition2[Edition2["EDITION_UNSTABLE"] = 9999] = "EDITION_UNSTABLE";
  Edition2[Edition2["EDITION_1_TEST_ONLY"] = 1] = "EDITION_1_TEST_ONLY";
  Edition2[Edition2["EDITION_2_TEST_ONLY"] = 2] = "EDITION_2_TEST_ONLY";
  Edition2[Edition2["EDITION_99997_TEST_ONLY"] = 99997] = "EDITION_99997_TEST_ONLY";
  Edition2[Edition2["EDITION_99998_TEST_ONLY"] = 99998] = "EDITION_99998_TEST_ONLY";
  Edition2[Edition2["EDITION_99999_TEST_ONLY"] = 99999] = "EDITION_99999_TEST_ONLY";
  Edition2[Edition2["EDITION_MAX"] = 2147483647] = "EDITION_MAX";
})(Edition || (Edition = {}));
var SymbolVisibility;
(function(SymbolVisibility2) {
  SymbolVisibility2[SymbolVisibility2["VISIBILITY_UNSET"] = 0] = "VISIBILITY_UNSET";
  SymbolVisibility2[SymbolVisibility2["VISIBILITY_LOCAL"] = 1] = "VISIBILITY_LOCAL";
  SymbolVisibility2[SymbolVisibility2["VISIBILITY_EXPORT"] = 2] = "VISIBILITY_EXPORT";
})(SymbolVisibility || (SymbolVisibility = {}));

// node_modules/@bufbuild/protobuf/dist/esm/from-binary.js
function makeReadContext(options) {
  return Object.assign(Object.assign({ readUnknownFields: true, recursionLimit: 100 }, options), { depth: 0 });
}
function fromBinary(schema, bytes, options) {
  const message = create(schema);
  compiledReader(schema).read(message, new BinaryReader(bytes), makeReadContext(options), bytes.byteLength);
  return message;
}
var compiledReaders = /* @__PURE__ */ new WeakMap();
function compiledReader(desc) {
  let compiled = compiledReaders.get(desc);
  if (compiled === void 0) {
    compiled = compileMessage(desc);
  }
  return compiled;
}
function compileMessage(desc) {
  const descString = String(desc);
  const fieldReaders = /* @__PURE__ */ new Map();
  const compiled = {
    read: compileMessageReader(descString, fieldReaders),
    readGroup: compileGroupReader(descString, fieldReaders)
  };
  compiledReaders.set(desc, compiled);
  for (const field of desc.fields) {
    fieldReaders.set(field.number, compileFieldReader(field));
  }
  return compiled;
}
function compileMessageReader(descString, fieldReaders) {
  return (message, reader, ctx, length) => {
    var _a;
    if (++ctx.depth > ctx.recursionLimit) {
      throw new Error(`cannot decode ${descString} from binary: maximum recursion depth of ${ctx.recursionLimit} reached`);
    }
    const end = reader.pos + length;
    const unknownFields = (_a = message.$unknown) !== null && _a !== void 0 ? _a : [];
    while (reader.pos < end) {
      const [fieldNo, wireType] = reader.tag();
      const fieldReader = fieldReaders.get(fieldNo);
      if (fieldReader === void 0) {
        const data = reader.skip(wireType, fieldNo, ctx.recursionLimit - ctx.depth);
        if (ctx.readUnknownFields) {
          unknownFields.push({ no: fieldNo, wireType, data });
        }
        continue;
      }
      fieldReader(message, reader, ctx, wireType);
    }
    if (unknownFields.length > 0) {
      message.$unknown = unknownFields;
    }
    ctx.depth--;
  };
}
function compileGroupReader(descString, fieldReaders) {
  return (message, reader, ctx, fieldNo) => {
    var _a;
    if (++ctx.depth > ctx.recursionLimit) {
      throw new Error(`cannot decode ${descString} from binary: maximum recursion depth of ${ctx.recursionLimit} reached`);
    }
    let recordFieldNo;
    let wireType;
    const unknownFields = (_a = message.$unknown) !== null && _a !== void 0 ? _a : [];
    while (reader.pos < reader.len) {
      [recordFieldNo, wireType] = reader.tag();
      if (wireType == WireType.EndGroup) {
        break;
      }
      const fieldReader = fieldReaders.get(recordFieldNo);
      if (fieldReader === void 0) {
        const data = reader.skip(wireType, recordFieldNo, ctx.recursionLimit - ctx.depth);
        if (ctx.readUnknownFields) {
          unknownFields.push({ no: recordFieldNo, wireType, data });
        }
        continue;
      }
      fieldReader(message, reader, ctx, wireType);
    }
    if (wireType != WireType.EndGroup || recordFieldNo !== fieldNo) {
      throw new Error("invalid end group tag");
    }
    if (unknownFields.length > 0) {
      message.$unknown = unknownFields;
    }
    ctx.depth--;
  };
}
function compileFieldReader(field) {
  switch (field.fieldKind) {
    case "scalar":
      return compileScalarFieldReader(field);
    case "enum":
      return compileEnumFieldReader(field);
    case "message":
      return compileMessageFieldReader(field);
    case "list":
      return compileListFieldReader(field);
    case "map":
      return compileMapFieldReader(field);
  }
}
function compileScalarFieldReader(field) {
  const readScalar = compileScalarReader(field.scalar, field.utf8Validation, field.longAsString);
  const localName = field.localName;
  if (field.oneof) {
    const oneofLocalName = field.oneof.localName;
    return (message, reader) => {
      message[oneofLocalName] = {
        case: localName,
        value: readScalar(reader)
      };
    };
  }
  return (message, reader) => {
    message[localName] = readScalar(reader);
  };
}
function compileEnumFieldReader(field) {
  var _a;
  const localName = field.localName;
  const oneofLocalName = (_a = field.oneof) === null || _a === void 0 ? void 0 : _a.localName;
  if (field.enum.open) {
    if (oneofLocalName !== void 0) {
      return (message, reader) => {
        message[oneofLocalName] = { case: localName, value: reader.int32() };
      };
    }
    return (message, reader) => {
      message[localName] = reader.int32();
    };
  }
  const values = field.enum.values;
  const fieldNo = field.number;
  return (message, reader, ctx, wireType) => {
    var _a2;
    const val = reader.int32();
    if (values.some((v) => v.number === val)) {
      if (oneofLocalName !== void 0) {
        message[oneofLocalName] = { case: localName, value: val };
      } else {
        message[localName] = val;
      }
    } else if (ctx.readUnknownFields) {
      const bytes = [];
      varint32write(val, bytes);
      const unknownFields = (_a2 = message.$unknown) !== null && _a2 !== void 0 ? _a2 : [];
      unknownFields.push({
        no: fieldNo,
        wireType,
        data: new Uint8Array(bytes)
      });
      message.$unknown = unknownFields;
    }
  };
}
function compileMessageFieldReader(field) {
  const localName = field.localName;
  const { toMessage, toLocal } = localMessageMapper(field);
  const readChild = compileChildReader(field);
  if (field.oneof) {
    const oneofLocalName = field.oneof.localName;
    return (message, reader, ctx) => {
      const oneof = message[oneofLocalName];
      const child = toMessage(oneof.case === localName ? oneof.value : void 0);
      readChild(child, reader, ctx);
      message[oneofLocalName] = { case: localName, value: toLocal(child) };
    };
  }
  return (message, reader, ctx) => {
    const child = toMessage(message[localName]);
    readChild(child, reader, ctx);
    message[localName] = toLocal(child);
  };
}
function compileChildReader(field) {
  const compiledChild = compiledReader(field.message);
  if (field.delimitedEncoding) {
    const fieldNo = field.number;
    return (child, reader, ctx) => compiledChild.readGroup(child, reader, ctx, fieldNo);
  }
  return (child, reader, ctx) => compiledChild.read(child, reader, ctx, reader.uint32());
}
function compileListFieldReader(field) {
  const localName = field.localName;
  if (field.listKind == "message") {
    const { toMessage, toLocal } = localMessageMapper(field);
    const readChild = compileChildReader(field);
    return (message, reader, ctx) => {
      const child = toMessage(void 0);
      readChild(child, reader, ctx);
      message[localName].push(toLocal(child));
    };
  }
  const scalarType = field.listKind == "enum" ? ScalarType.INT32 : field.scalar;
  const longAsString = field.listKind == "scalar" ? field.longAsString : false;
  const readScalar = compileScalarReader(scalarType, field.utf8Validation, longAsString);
  const packedPossible = scalarType != ScalarType.STRING && scalarType != ScalarType.BYTES;
  return (message, reader, ctx, wireType) => {
    const items = message[localName];
    if (wireType == WireType.LengthDelimited && packedPossible) {
      const end = reader.uint32() + reader.pos;
      while (reader.pos < end) {
        items.push(readScalar(reader));
      }
    } else {
      items.push(readScalar(reader));
    }
  };
}
function compileMapFieldReader(field) {
  const localName = field.localName;
  const readKey = compileScalarReader(field.mapKey, field.utf8Validation, false);
  const keyZero = scalarZeroValue(field.mapKey, false);
  let readValue;
  let valueDefault;
  switch (field.mapKind) {
    case "scalar": {
      const scalar = field.scalar;
      const readScalar = compileScalarReader(scalar, field.utf8Validation, false);
      readValue = (reader) => readScalar(reader);
      if (scalar == ScalarType.BYTES) {
        valueDefault = () => new Uint8Array(0);
      } else {
        const zero = scalarZeroValue(scalar, false);
        valueDefault = () => zero;
      }
      break;
    }
    case "enum": {
      const zero = field.enum.values[0].number;
      readValue = (reader) => reader.int32();
      valueDefault = () => zero;
      break;
    }
    case "message": {
      const { toMessage, toLocal } = localMessageMapper(field);
      const readChild = compiledReader(field.message).read;
      readValue = (reader, ctx, existing) => {
        const child = toMessage(existing);
        readChild(child, reader, ctx, reader.uint32());
        return toLocal(child);
      };
      valueDefault = () => toLocal(toMessage(void 0));
      break;
    }
  }
  return (message, reader, ctx) => {
    const record = message[localName];
    let key;
    let val;
    const len = reader.uint32();
    const end = reader.pos + len;
    while (reader.pos < end) {
      const [fieldNo, wireType] = reader.tag();
      switch (fieldNo) {
        case 1:
          key = readKey(reader);
          break;
        case 2:
          val = readValue(reader, ctx, val);
          break;
        default:
          reader.skip(wireType, fieldNo, ctx.recursionLimit - ctx.depth);
      }
    }
    if (key === void 0) {
      key = keyZero;
    }
    if (val === void 0) {
      val = valueDefault();
    }
    setOwn(record, key, val);
  };
}
function compileScalarReader(type, utf8Validation, longAsString) {
  switch (type) {
    case ScalarType.STRING:
      return (reader) => reader.string(utf8Validation);
    case ScalarType.BOOL:
      return (reader) => reader.bool();
    case ScalarType.DOUBLE:
      return (reader) => reader.double();
    case ScalarType.FLOAT:
      return (reader) => reader.float();
    case ScalarType.INT32:
      return (reader) => reader.int32();
    case ScalarType.INT64:
      if (longAsString) {
        return (reader) => String(reader.int64());
      }
      return (reader) => reader.int64();
    case ScalarType.UINT64:
      if (longAsString) {
        return (reader) => String(reader.uint64());
      }
      return (reader) => reader.uint64();
    case ScalarType.FIXED64:
      if (longAsString) {
        return (reader) => String(reader.fixed64());
      }
      return (reader) => reader.fixed64();
    case ScalarType.BYTES:
      return (reader) => reader.bytes();
    case ScalarType.FIXED32:
      return (reader) => reader.fixed32();
    case ScalarType.SFIXED32:
      return (reader) => reader.sfixed32();
    case ScalarType.SFIXED64:
      if (longAsString) {
        return (reader) => String(reader.sfixed64());
      }
      return (reader) => reader.sfixed64();
    case ScalarType.SINT64:
      if (longAsString) {
        return (reader) => String(reader.sint64());
      }
      return (reader) => reader.sint64();
    case ScalarType.UINT32:
      return (reader) => reader.uint32();
    case ScalarType.SINT32:
      return (reader) => reader.sint32();
  }
}

// node_modules/@bufbuild/protobuf/dist/esm/codegenv2/file.js
function fileDesc(b64, imports) {
  var _a;
  const root = fromBinary(FileDescriptorProtoSchema, base64Decode(b64));
  root.messageType.forEach(restoreJsonNames);
  root.dependency = (_a = imports === null || imports === void 0 ? void 0 : imports.map((f) => f.proto.name)) !== null && _a !== void 0 ? _a : [];
  const reg = createEmbeddedFileRegistry(root, (protoFileName) => imports === null || imports === void 0 ? void 0 : imports.find((f) => f.proto.name === protoFileName));
  return reg.getFile(root.name);
}

// node_modules/@bufbuild/protobuf/dist/esm/to-binary.js
var IMPLICIT3 = 2;
var LEGACY_REQUIRED2 = 3;
var writeDefaults = {
  writeUnknownFields: true
};
function makeWriteOptions(options) {
  return options ? Object.assign(Object.assign({}, writeDefaults), options) : writeDefaults;
}
function toBinary(schema, message, options) {
  const writer = new BinaryWriter();
  compiledWriter(schema)(writer, makeWriteOptions(options), message);
  return writer.finish();
}
var compiledWriters = /* @__PURE__ */ new WeakMap();
function compiledWriter(desc) {
  let compiled = compiledWriters.get(desc);
  if (compiled === void 0) {
    compiled = compileMessage2(desc);
  }
  return compiled;
}
function compileMessage2(desc) {
  const typeName = desc.typeName;
  const sortedFields = desc.fields.concat().sort((a, b) => a.number - b.number);
  const foreignField = sortedFields[0];
  const fieldWriters = [];
  const compiled = (writer, opts, message) => {
    if (message.$typeName !== typeName && foreignField !== void 0) {
      throw new FieldError(foreignField, `cannot use ${foreignField} with message ${message.$typeName}`, "ForeignFieldError");
    }
    for (let i = 0; i < fieldWriters.length; i++) {
      fieldWriters[i](writer, opts, message);
    }
    const unknown = message.$unknown;
    if (unknown !== void 0 && opts.writeUnknownFields) {
      for (let i = 0; i < unknown.length; i++) {
        const { no, wireType, data } = unknown[i];
        writer.tag(no, wireType).raw(data);
      }
    }
  };
  compiledWriters.set(desc, compiled);
  for (const field of sortedFields) {
    fieldWriters.push(compileField(field));
  }
  return compiled;
}
function compileField(field) {
  switch (field.fieldKind) {
    case "message":
    case "scalar":
    case "enum":
      return compileSingularField(field);
    case "list":
      return compileListField(field);
    case "map":
      return compileMapField(field);
  }
}
function compileSingularField(field) {
  const writeValue = compileSingularValue(field);
  const localName = field.localName;
  if (field.oneof) {
    const oneofLocalName = field.oneof.localName;
    return (writer, opts, message) => {
      const oneof = message[oneofLocalName];
      if (oneof.case === localName) {
        writeValue(writer, opts, oneof.value);
      }
    };
  }
  if (field.presence != IMPLICIT3) {
    const requiredError = field.presence == LEGACY_REQUIRED2 ? `cannot encode ${field} to binary: required field not set` : void 0;
    return (writer, opts, message) => {
      const value = message[localName];
      if (value !== void 0 && Object.prototype.hasOwnProperty.call(message, localName)) {
        writeValue(writer, opts, value);
      } else if (requiredError !== void 0) {
        throw new Error(requiredError);
      }
    };
  }
  if (field.fieldKind == "enum") {
    const zero = field.enum.values[0].number;
    return (writer, opts, message) => {
      const value = message[localName];
      if (value !== zero) {
        writeValue(writer, opts, value);
      }
    };
  }
  switch (field.scalar) {
    case ScalarType.BOOL:
      return (writer, opts, message) => {
        const value = message[localName];
        if (value !== false) {
          writeValue(writer, opts, value);
        }
      };
    case ScalarType.STRING:
      return (writer, opts, message) => {
        const value = message[localName];
        if (value !== "") {
          writeValue(writer, opts, value);
        }
      };
    case ScalarType.BYTES:
      return (writer, opts, message) => {
        const value = message[localName];
        if (!(value instanceof Uint8Array) || value.byteLength > 0) {
          writeValue(writer, opts, value);
        }
      };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return (writer, opts, message) => {
        const value = message[localName];
        if (!Object.is(value, 0)) {
          writeValue(writer, opts, value);
        }
      };
    default:
      return (writer, opts, message) => {
        const value = message[localName];
        if (value != 0) {
          writeValue(writer, opts, value);
        }
      };
  }
}
function compileSingularValue(field) {
  switch (field.fieldKind) {
    case "message": {
      const { toMessage } = localMessageMapper(field);
      const writeChild = compileChildWriter(field);
      return (writer, opts, value) => {
        writeChild(writer, opts, toMessage(value));
      };
    }
    case "scalar":
    case "enum": {
      const scalarType = field.fieldKind == "enum" ? ScalarType.INT32 : field.scalar;
      const fieldNo = field.number;
      const wireType = writeTypeOfScalar(scalarType);
      const writeScalar = compileScalarValue(scalarType, field.parent.typeName, field.name);
      return (writer, opts, value) => {
        writer.tag(fieldNo, wireType);
        writeScalar(writer, value);
      };
    }
  }
}
function compileListField(field) {
  const localName = field.localName;
  const fieldNo = field.number;
  switch (field.listKind) {
    case "message": {
      const { toMessage } = localMessageMapper(field);
      const writeChild = compileChildWriter(field);
      return (writer, opts, message) => {
        const items = message[localName];
        for (let i = 0; i < items.length; i++) {
          writeChild(writer, opts, toMessage(items[i]));
        }
      };
    }
    case "scalar":
    case "enum": {
      const scalarType = field.listKind == "enum" ? ScalarType.INT32 : field.scalar;
      const writeScalar = compileScalarValue(scalarType, field.parent.typeName, field.name);
      if (field.packed) {
        return (writer, opts, message) => {
          const items = message[localName];
          if (items.length == 0) {
            return;
          }
          writer.tag(fieldNo, WireType.LengthDelimited).fork();
          for (let i = 0; i < items.length; i++) {
            writeScalar(writer, items[i]);
          }
          writer.join();
        };
      }
      const wireType = writeTypeOfScalar(scalarType);
      return (writer, opts, message) => {
        const items = message[localName];
        for (let i = 0; i < items.length; i++) {
          writer.tag(fieldNo, wireType);
          writeScalar(writer, items[i]);
        }
      };
    }
  }
}
function compileMapField(field) {
  const localName = field.localName;
  const fieldNo = field.number;
  const writeKey = compileMapKey(field);
  if (field.mapKind == "message") {
    const { toMessage } = localMessageMapper(field);
    const writeMessage = compiledWriter(field.message);
    return (writer, opts, message) => {
      const record = message[localName];
      const keys = Object.keys(record);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        writer.tag(fieldNo, WireType.LengthDelimited).fork();
        writeKey(writer, key);
        writer.tag(2, WireType.LengthDelimited).fork();
        writeMessage(writer, opts, toMessage(record[key]));
        writer.join();
        writer.join();
      }
    };
  }
  const scalarType = field.mapKind == "enum" ? ScalarType.INT32 : field.scalar;
  const valueWireType = writeTypeOfScalar(scalarType);
  const writeScalar = compileScalarValue(scalarType, field.parent.typeName, field.name);
  return (writer, opts, message) => {
    const record = message[localName];
    const keys = Object.keys(record);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      writer.tag(fieldNo, WireType.LengthDelimited).fork();
      writeKey(writer, key);
      writer.tag(2, valueWireType);
      writeScalar(writer, record[key]);
      writer.join();
    }
  };
}
function compileMapKey(field) {
  const wireType = writeTypeOfScalar(field.mapKey);
  const writeScalar = compileScalarValue(field.mapKey, field.parent.typeName, field.name);
  const convertKey = compileMapKeyConverter(field.mapKey);
  return (writer, key) => {
    writer.tag(1, wireType);
    writeScalar(writer, convertKey(key));
  };
}
function compileMapKeyConverter(type) {
  switch (type) {
    case ScalarType.STRING:
      return (key) => key;
    case ScalarType.BOOL:
      return (key) => key === "true" ? true : key === "false" ? false : key;
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return (key) => {
        try {
          return protoInt64.uParse(key);
        } catch (_a) {
          return key;
        }
      };
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      return (key) => {
        try {
          return protoInt64.parse(key);
        } catch (_a) {
          return key;
        }
      };
    default:
      return (key) => {
        const n = Number.parseInt(key);
        return Number.isFinite(n) ? n : key;
      };
  }
}
function compileScalarValue(type, messageName, fieldName) {
  const writeScalar = compileScalarWrite(type);
  return (writer, value) => {
    try {
      writeScalar(writer, value);
    } catch (e) {
      if (e instanceof Error) {
        throw new Error(`cannot encode field ${messageName}.${fieldName} to binary: ${e.message}`);
      }
      throw e;
    }
  };
}
function compileScalarWrite(type) {
  switch (type) {
    case ScalarType.STRING:
      return (writer, value) => writer.string(value);
    case ScalarType.BOOL:
      return (writer, value) => writer.bool(value);
    case ScalarType.DOUBLE:
      return (writer, value) => writer.double(value);
    case ScalarType.FLOAT:
      return (writer, value) => writer.float(value);
    case ScalarType.INT32:
      return (writer, value) => writer.int32(value);
    case ScalarType.INT64:
      return (writer, value) => writer.int64(value);
    case ScalarType.UINT64:
      return (writer, value) => writer.uint64(value);
    case ScalarType.FIXED64:
      return (writer, value) => writer.fixed64(value);
    case ScalarType.BYTES:
      return (writer, value) => writer.bytes(value);
    case ScalarType.FIXED32:
      return (writer, value) => writer.fixed32(value);
    case ScalarType.SFIXED32:
      return (writer, value) => writer.sfixed32(value);
    case ScalarType.SFIXED64:
      return (writer, value) => writer.sfixed64(value);
    case ScalarType.SINT64:
      return (writer, value) => writer.sint64(value);
    case ScalarType.UINT32:
      return (writer, value) => writer.uint32(value);
    case ScalarType.SINT32:
      return (writer, value) => writer.sint32(value);
  }
}
function compileChildWriter(field) {
  const fieldNo = field.number;
  const writeMessage = compiledWriter(field.message);
  if (field.delimitedEncoding) {
    return (writer, opts, child) => {
      writer.tag(fieldNo, WireType.StartGroup);
      writeMessage(writer, opts, child);
      writer.tag(fieldNo, WireType.EndGroup);
    };
  }
  return (writer, opts, child) => {
    writer.tag(fieldNo, WireType.LengthDelimited).fork();
    writeMessage(writer, opts, child);
    writer.join();
  };
}
function writeTypeOfScalar(type) {
  switch (type) {
    case ScalarType.BYTES:
    case ScalarType.STRING:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

// src/backoff.ts
function backoffDelay(policy, attempt, random = Math.random) {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// src/bytes.ts
var encoder = new TextEncoder();
var decoder = new TextDecoder("utf-8", { fatal: true });
function utf8(text) {
  return encoder.encode(text);
}
function toHex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
function fromHex(hex) {
  const clean = hex.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new TypeError(`not a hex string: ${hex.slice(0, 40)}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}
function concat(...parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
function u16(value) {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new RangeError(`${value} does not fit a u16`);
  }
  return new Uint8Array([value >>> 8, value & 255]);
}
function u64(value) {
  if (value < 0n || value > 0xffffffffffffffffn) {
    throw new RangeError(`${value} does not fit a u64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}
function str8(text) {
  const bytes = utf8(text);
  if (bytes.length > 255) {
    throw new RangeError(`"${text.slice(0, 20)}…" is ${bytes.length} bytes of UTF-8; a str8 holds at most 255`);
  }
  return concat(new Uint8Array([bytes.length]), bytes);
}
function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
var Reader = class {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.what = what;
  }
  bytes;
  what;
  at = 0;
  /** How many bytes are left. */
  get remaining() {
    return this.bytes.length - this.at;
  }
  /** The next `n` bytes. */
  take(n, field) {
    if (n > this.remaining) {
      throw new RangeError(`${this.what} is truncated: ${field} needs ${n} bytes, ${this.remaining} left`);
    }
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8(field) {
    return this.take(1, field)[0];
  }
  u16(field) {
    const b = this.take(2, field);
    return b[0] << 8 | b[1];
  }
  u32(field) {
    const b = this.take(4, field);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }
  /** Everything not read yet. */
  rest() {
    return this.take(this.remaining, "the rest");
  }
  /** Throws when bytes are left over: trailing bytes are an error on this wire. */
  end() {
    if (this.remaining !== 0) {
      throw new RangeError(`${this.what} has ${this.remaining} trailing bytes`);
    }
  }
};

// src/commands.ts
var Command = {
  Error: 1,
  Ping: 2,
  Pong: 3,
  HandshakeHello: 4,
  HandshakeAnswer: 5,
  ResumeHello: 6,
  Kick: 7,
  Send: 16,
  SendAck: 17,
  Push: 18,
  Sync: 19,
  SyncPage: 20,
  MarkRead: 21,
  MarkReadAck: 22,
  Unread: 23,
  UnreadCounts: 24,
  Recall: 25,
  Delete: 26,
  Typing: 27,
  History: 28,
  HistoryPage: 29,
  Conversations: 30,
  ConversationList: 31,
  GroupCreate: 32,
  GroupInfo: 33,
  GroupJoin: 34,
  GroupLeave: 35,
  GroupMembersQuery: 36,
  GroupMembers: 37,
  Ok: 38,
  ChannelPull: 48,
  ChannelPage: 49,
  ChannelNotify: 50,
  PresenceQuery: 64,
  PresenceResult: 65,
  Search: 80,
  SearchResults: 81,
  SystemPush: 96,
  Edit: 112,
  React: 113,
  Settings: 114,
  SettingsAck: 115,
  Blocked: 116,
  BlockedList: 117,
  ReadStateQuery: 118,
  ReadState: 119,
  GroupsQuery: 120,
  GroupList: 121,
  GroupUpdate: 122,
  GroupSetRole: 123,
  GroupTransfer: 124,
  GroupMute: 125,
  GroupDismiss: 126,
  GroupAddMembers: 127,
  GroupRemoveMembers: 128,
  PushRegister: 129,
  PushUnregister: 130,
  AppState: 131,
  MediaUpload: 132,
  MediaUploadTicket: 133
};
var BUSINESS_COMMAND_MIN = 32768;
function isBusinessCommand(code) {
  return Number.isInteger(code) && code >= BUSINESS_COMMAND_MIN && code <= 65535;
}
var names = new Map(Object.entries(Command).map(([name, code]) => [code, name]));
function commandName(code) {
  if (isBusinessCommand(code)) return `Business(0x${code.toString(16)})`;
  return names.get(code) ?? `Unknown(${code})`;
}

// src/gen/bubble_pb.ts
var file_bubble = /* @__PURE__ */ fileDesc("CgxidWJibGUucHJvdG8SCWJ1YmJsZS52MSJFCgxDb252ZXJzYXRpb24SKQoEa2luZBgBIAEoDjIbLmJ1YmJsZS52MS5Db252ZXJzYXRpb25LaW5kEgoKAmlkGAIgASgJIpwBCghNZWRpYVJlZhILCgN1cmwYASABKAkSDAoEc2l6ZRgCIAEoBBIMCgRtaW1lGAMgASgJEg4KBnNoYTI1NhgEIAEoCRINCgV3aWR0aBgFIAEoDRIOCgZoZWlnaHQYBiABKA0SEwoLZHVyYXRpb25fbXMYByABKA0SDAoEbmFtZRgIIAEoCRIVCg10aHVtYm5haWxfdXJsGAkgASgJIjgKBVZvaWNlEgwKBG1pbWUYASABKAkSEwoLZHVyYXRpb25fbXMYAiABKA0SDAoEZGF0YRgDIAEoDCJNCgZDdXN0b20SJwoGZm9ybWF0GAEgASgOMhcuYnViYmxlLnYxLkN1c3RvbUZvcm1hdBIMCgR0eXBlGAIgASgJEgwKBGJvZHkYAyABKAwiPQoHQ29udGVudBIkCgR0eXBlGAEgASgOMhYuYnViYmxlLnYxLkNvbnRlbnRUeXBlEgwKBGJvZHkYAiABKAwicAoIUmVwbHlSZWYSFQoNc2VydmVyX21zZ19pZBgBIAEoDBIOCgZzZW5kZXIYAiABKAkSLAoMY29udGVudF90eXBlGAMgASgOMhYuYnViYmxlLnYxLkNvbnRlbnRUeXBlEg8KB3ByZXZpZXcYBCABKAkiSAoKRm9yd2FyZFJlZhIVCg1zZXJ2ZXJfbXNnX2lkGAEgASgMEg4KBnNlbmRlchgCIAEoCRITCgtzZXJ2ZXJfdGltZRgDIAEoAyIuCg5SZWFjdGlvbkNoYW5nZRINCgVlbW9qaRgBIAEoCRINCgVhZGRlZBgCIAEoCCI7Cg1SZWFjdGlvbkNvdW50Eg0KBWVtb2ppGAEgASgJEg0KBWNvdW50GAIgASgEEgwKBG1pbmUYAyABKAgiZwoUQ29udmVyc2F0aW9uU2V0dGluZ3MSDgoGcGlubmVkGAEgASgIEg0KBW11dGVkGAIgASgIEhAKCGFyY2hpdmVkGAMgASgIEg0KBWRyYWZ0GAQgASgJEg8KB2Jsb2NrZWQYBSABKAgi+wEKCUVudHJ5TWV0YRIlCghyZXBseV90bxgBIAEoCzITLmJ1YmJsZS52MS5SZXBseVJlZhItCg5mb3J3YXJkZWRfZnJvbRgCIAEoCzIVLmJ1YmJsZS52MS5Gb3J3YXJkUmVmEhAKCG1lbnRpb25zGAMgAygJEhMKC21lbnRpb25fYWxsGAQgASgIEhEKCWVkaXRlZF9hdBgFIAEoAxIrCghyZWFjdGlvbhgGIAEoCzIZLmJ1YmJsZS52MS5SZWFjdGlvbkNoYW5nZRIxCghzZXR0aW5ncxgHIAEoCzIfLmJ1YmJsZS52MS5Db252ZXJzYXRpb25TZXR0aW5ncyKxAwoFRW50cnkSDwoHdmVyc2lvbhgBIAEoBBIiCgRraW5kGAIgASgOMhQuYnViYmxlLnYxLkVudHJ5S2luZBItCgxjb252ZXJzYXRpb24YAyABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEicKCWRpcmVjdGlvbhgEIAEoDjIULmJ1YmJsZS52MS5EaXJlY3Rpb24SFQoNc2VydmVyX21zZ19pZBgFIAEoDBIOCgZzZW5kZXIYBiABKAkSFQoNc2VuZGVyX2RldmljZRgHIAEoCRIVCg1jbGllbnRfbXNnX2lkGAggASgJEhIKCmNsaWVudF9zZXEYCSABKAQSEwoLY3JlYXRlX3RpbWUYCiABKAMSEwoLc2VydmVyX3RpbWUYCyABKAMSIwoHY29udGVudBgMIAEoCzISLmJ1YmJsZS52MS5Db250ZW50EhIKCnJlYWRfdXBfdG8YDSABKAQSIgoEbWV0YRgOIAEoCzIULmJ1YmJsZS52MS5FbnRyeU1ldGESKwoJcmVhY3Rpb25zGA8gAygLMhguYnViYmxlLnYxLlJlYWN0aW9uQ291bnQi2gIKDENoYW5uZWxFbnRyeRIQCghncm91cF9pZBgBIAEoCRILCgNzZXEYAiABKAQSIgoEa2luZBgDIAEoDjIULmJ1YmJsZS52MS5FbnRyeUtpbmQSFQoNc2VydmVyX21zZ19pZBgEIAEoDBIOCgZzZW5kZXIYBSABKAkSFQoNc2VuZGVyX2RldmljZRgGIAEoCRIVCg1jbGllbnRfbXNnX2lkGAcgASgJEhIKCmNsaWVudF9zZXEYCCABKAQSEwoLY3JlYXRlX3RpbWUYCSABKAMSEwoLc2VydmVyX3RpbWUYCiABKAMSIwoHY29udGVudBgLIAEoCzISLmJ1YmJsZS52MS5Db250ZW50EiIKBG1ldGEYDCABKAsyFC5idWJibGUudjEuRW50cnlNZXRhEisKCXJlYWN0aW9ucxgNIAMoCzIYLmJ1YmJsZS52MS5SZWFjdGlvbkNvdW50IhsKBFBpbmcSEwoLY2xpZW50X3RpbWUYASABKAMiMAoEUG9uZxITCgtjbGllbnRfdGltZRgBIAEoAxITCgtzZXJ2ZXJfdGltZRgCIAEoAyKTAgoLU2VuZFJlcXVlc3QSIwoCdG8YASABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEhUKDWNsaWVudF9tc2dfaWQYAiABKAkSEgoKY2xpZW50X3NlcRgDIAEoBBITCgtjcmVhdGVfdGltZRgEIAEoAxIjCgdjb250ZW50GAUgASgLMhIuYnViYmxlLnYxLkNvbnRlbnQSEAoIcmVwbHlfdG8YBiABKAwSEgoKZm9yd2FyZF9vZhgHIAEoDBItCgxmb3J3YXJkX2Zyb20YCCABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEhAKCG1lbnRpb25zGAkgAygJEhMKC21lbnRpb25fYWxsGAogASgIInwKB1NlbmRBY2sSFQoNc2VydmVyX21zZ19pZBgBIAEoDBIPCgd2ZXJzaW9uGAIgASgEEgsKA3NlcRgDIAEoBBITCgtzZXJ2ZXJfdGltZRgEIAEoAxIRCglkdXBsaWNhdGUYBSABKAgSFAoMcHJldl92ZXJzaW9uGAYgASgEIj0KBFB1c2gSHwoFZW50cnkYASABKAsyEC5idWJibGUudjEuRW50cnkSFAoMcHJldl92ZXJzaW9uGAIgASgEIl4KDkhpc3RvcnlSZXF1ZXN0Ei0KDGNvbnZlcnNhdGlvbhgBIAEoCzIXLmJ1YmJsZS52MS5Db252ZXJzYXRpb24SDgoGYmVmb3JlGAIgASgEEg0KBWxpbWl0GAMgASgNIpsBCgtIaXN0b3J5UGFnZRIhCgdlbnRyaWVzGAEgAygLMhAuYnViYmxlLnYxLkVudHJ5EjAKD2NoYW5uZWxfZW50cmllcxgCIAMoCzIXLmJ1YmJsZS52MS5DaGFubmVsRW50cnkSEAoIaGFzX21vcmUYAyABKAgSEwoLbWF4X3ZlcnNpb24YBCABKAQSEAoIbGFzdF9zZXEYBSABKAQiMwoLU3luY1JlcXVlc3QSFQoNYWZ0ZXJfdmVyc2lvbhgBIAEoBBINCgVsaW1pdBgCIAEoDSJUCghTeW5jUGFnZRIhCgdlbnRyaWVzGAEgAygLMhAuYnViYmxlLnYxLkVudHJ5EhAKCGhhc19tb3JlGAIgASgIEhMKC21heF92ZXJzaW9uGAMgASgEIjUKFENvbnZlcnNhdGlvbnNSZXF1ZXN0Eg4KBmJlZm9yZRgBIAEoBBINCgVsaW1pdBgCIAEoDSK0AgoTQ29udmVyc2F0aW9uU3VtbWFyeRItCgxjb252ZXJzYXRpb24YASABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEhAKCGFjdGl2aXR5GAIgASgEEiQKCmxhc3RfZW50cnkYAyABKAsyEC5idWJibGUudjEuRW50cnkSMwoSbGFzdF9jaGFubmVsX2VudHJ5GAQgASgLMhcuYnViYmxlLnYxLkNoYW5uZWxFbnRyeRIOCgZ1bnJlYWQYBSABKAQSEgoKcmVhZF91cF90bxgGIAEoBBIXCg9wZWVyX3JlYWRfdXBfdG8YByABKAQSMQoIc2V0dGluZ3MYCCABKAsyHy5idWJibGUudjEuQ29udmVyc2F0aW9uU2V0dGluZ3MSEQoJbWVudGlvbmVkGAkgASgIInAKEENvbnZlcnNhdGlvbkxpc3QSNQoNY29udmVyc2F0aW9ucxgBIAMoCzIeLmJ1YmJsZS52MS5Db252ZXJzYXRpb25TdW1tYXJ5EhAKCGhhc19tb3JlGAIgASgIEhMKC21heF92ZXJzaW9uGAMgASgEIk8KD01hcmtSZWFkUmVxdWVzdBItCgxjb252ZXJzYXRpb24YASABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEg0KBXVwX3RvGAIgASgEIh0KC01hcmtSZWFkQWNrEg4KBm1hcmtlZBgBIAEoBCIPCg1VbnJlYWRSZXF1ZXN0Il4KC1VucmVhZENvdW50Ei0KDGNvbnZlcnNhdGlvbhgBIAEoCzIXLmJ1YmJsZS52MS5Db252ZXJzYXRpb24SDQoFY291bnQYAiABKAQSEQoJbWVudGlvbmVkGAMgASgIIjYKDFVucmVhZENvdW50cxImCgZjb3VudHMYASADKAsyFi5idWJibGUudjEuVW5yZWFkQ291bnQiWgoSR3JvdXBDcmVhdGVSZXF1ZXN0EhAKCGdyb3VwX2lkGAEgASgJEgwKBG5hbWUYAiABKAkSDwoHbWVtYmVycxgDIAMoCRITCgtzdXBlcl9ncm91cBgEIAEoCCLBAQoJR3JvdXBJbmZvEhAKCGdyb3VwX2lkGAEgASgJEgwKBG5hbWUYAiABKAkSIgoEa2luZBgDIAEoDjIULmJ1YmJsZS52MS5Hcm91cEtpbmQSDQoFb3duZXIYBCABKAkSFAoMbWVtYmVyX2NvdW50GAUgASgEEhIKCmNyZWF0ZWRfYXQYBiABKAMSEgoKYXZhdGFyX3VybBgHIAEoCRIUCgxhbm5vdW5jZW1lbnQYCCABKAkSDQoFbXV0ZWQYCSABKAgiJAoQR3JvdXBKb2luUmVxdWVzdBIQCghncm91cF9pZBgBIAEoCSIlChFHcm91cExlYXZlUmVxdWVzdBIQCghncm91cF9pZBgBIAEoCSJNChNHcm91cE1lbWJlcnNSZXF1ZXN0EhAKCGdyb3VwX2lkGAEgASgJEhUKDWFmdGVyX3VzZXJfaWQYAiABKAkSDQoFbGltaXQYAyABKA0iZgoGTWVtYmVyEg8KB3VzZXJfaWQYASABKAkSIwoEcm9sZRgCIAEoDjIVLmJ1YmJsZS52MS5NZW1iZXJSb2xlEhEKCWpvaW5lZF9hdBgDIAEoAxITCgttdXRlZF91bnRpbBgEIAEoAyIPCg1Hcm91cHNSZXF1ZXN0IjEKCUdyb3VwTGlzdBIkCgZncm91cHMYASADKAsyFC5idWJibGUudjEuR3JvdXBJbmZvIrQBChJHcm91cFVwZGF0ZVJlcXVlc3QSEAoIZ3JvdXBfaWQYASABKAkSEQoEbmFtZRgCIAEoCUgAiAEBEhcKCmF2YXRhcl91cmwYAyABKAlIAYgBARIZCgxhbm5vdW5jZW1lbnQYBCABKAlIAogBARISCgVtdXRlZBgFIAEoCEgDiAEBQgcKBV9uYW1lQg0KC19hdmF0YXJfdXJsQg8KDV9hbm5vdW5jZW1lbnRCCAoGX211dGVkIloKEEdyb3VwUm9sZVJlcXVlc3QSEAoIZ3JvdXBfaWQYASABKAkSDwoHdXNlcl9pZBgCIAEoCRIjCgRyb2xlGAMgASgOMhUuYnViYmxlLnYxLk1lbWJlclJvbGUiOQoUR3JvdXBUcmFuc2ZlclJlcXVlc3QSEAoIZ3JvdXBfaWQYASABKAkSDwoHdXNlcl9pZBgCIAEoCSJEChBHcm91cE11dGVSZXF1ZXN0EhAKCGdyb3VwX2lkGAEgASgJEg8KB3VzZXJfaWQYAiABKAkSDQoFdW50aWwYAyABKAMiJwoTR3JvdXBEaXNtaXNzUmVxdWVzdBIQCghncm91cF9pZBgBIAEoCSI/ChlHcm91cE1lbWJlcnNDaGFuZ2VSZXF1ZXN0EhAKCGdyb3VwX2lkGAEgASgJEhAKCHVzZXJfaWRzGAIgAygJIlYKDEdyb3VwTWVtYmVycxIQCghncm91cF9pZBgBIAEoCRIiCgdtZW1iZXJzGAIgAygLMhEuYnViYmxlLnYxLk1lbWJlchIQCghoYXNfbW9yZRgDIAEoCCIECgJPayJIChJDaGFubmVsUHVsbFJlcXVlc3QSEAoIZ3JvdXBfaWQYASABKAkSEQoJYWZ0ZXJfc2VxGAIgASgEEg0KBWxpbWl0GAMgASgNIm0KC0NoYW5uZWxQYWdlEhAKCGdyb3VwX2lkGAEgASgJEigKB2VudHJpZXMYAiADKAsyFy5idWJibGUudjEuQ2hhbm5lbEVudHJ5EhAKCGhhc19tb3JlGAMgASgIEhAKCGxhc3Rfc2VxGAQgASgEImgKDUNoYW5uZWxOb3RpZnkSEAoIZ3JvdXBfaWQYASABKAkSCwoDc2VxGAIgASgEEhAKCHByZXZfc2VxGAMgASgEEiYKBWVudHJ5GAQgASgLMhcuYnViYmxlLnYxLkNoYW5uZWxFbnRyeSIhCg1QcmVzZW5jZVF1ZXJ5EhAKCHVzZXJfaWRzGAEgAygJIkQKDkRldmljZVByZXNlbmNlEhEKCWRldmljZV9pZBgBIAEoCRIQCghwbGF0Zm9ybRgCIAEoCRINCgVzaW5jZRgDIAEoAyJbCgxVc2VyUHJlc2VuY2USDwoHdXNlcl9pZBgBIAEoCRIOCgZvbmxpbmUYAiABKAgSKgoHZGV2aWNlcxgDIAMoCzIZLmJ1YmJsZS52MS5EZXZpY2VQcmVzZW5jZSI4Cg5QcmVzZW5jZVJlc3VsdBImCgV1c2VycxgBIAMoCzIXLmJ1YmJsZS52MS5Vc2VyUHJlc2VuY2UikAEKDVNlYXJjaFJlcXVlc3QSDQoFd29yZHMYASABKAkSLQoMY29udmVyc2F0aW9uGAIgASgLMhcuYnViYmxlLnYxLkNvbnZlcnNhdGlvbhIRCglmcm9tX3RpbWUYAyABKAMSDwoHdG9fdGltZRgEIAEoAxIOCgZvZmZzZXQYBSABKA0SDQoFbGltaXQYBiABKA0ikwEKCVNlYXJjaEhpdBIVCg1zZXJ2ZXJfbXNnX2lkGAEgASgMEi0KDGNvbnZlcnNhdGlvbhgCIAEoCzIXLmJ1YmJsZS52MS5Db252ZXJzYXRpb24SDgoGc2VuZGVyGAMgASgJEhMKC3NlcnZlcl90aW1lGAQgASgDEgwKBHRleHQYBSABKAkSDQoFc2NvcmUYBiABKAIiQgoNU2VhcmNoUmVzdWx0cxIiCgRoaXRzGAEgAygLMhQuYnViYmxlLnYxLlNlYXJjaEhpdBINCgV0b3RhbBgCIAEoBCKsAQoKU3lzdGVtUHVzaBINCgVzY29wZRgBIAEoCRIOCgZ0YXJnZXQYAiABKAkSIwoHY29udGVudBgDIAEoCzISLmJ1YmJsZS52MS5Db250ZW50EhMKC3NlcnZlcl90aW1lGAQgASgDEiYKBWVudHJ5GAUgASgLMhcuYnViYmxlLnYxLkNoYW5uZWxFbnRyeRILCgNzZXEYBiABKAQSEAoIcHJldl9zZXEYByABKAQiVQoNUmVjYWxsUmVxdWVzdBItCgxjb252ZXJzYXRpb24YASABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEhUKDXNlcnZlcl9tc2dfaWQYAiABKAwiJgoNRGVsZXRlUmVxdWVzdBIVCg1zZXJ2ZXJfbXNnX2lkGAEgASgMIngKC0VkaXRSZXF1ZXN0Ei0KDGNvbnZlcnNhdGlvbhgBIAEoCzIXLmJ1YmJsZS52MS5Db252ZXJzYXRpb24SFQoNc2VydmVyX21zZ19pZBgCIAEoDBIjCgdjb250ZW50GAMgASgLMhIuYnViYmxlLnYxLkNvbnRlbnQicwoMUmVhY3RSZXF1ZXN0Ei0KDGNvbnZlcnNhdGlvbhgBIAEoCzIXLmJ1YmJsZS52MS5Db252ZXJzYXRpb24SFQoNc2VydmVyX21zZ19pZBgCIAEoDBINCgVlbW9qaRgDIAEoCRIOCgZyZW1vdmUYBCABKAgi4gEKD1NldHRpbmdzUmVxdWVzdBItCgxjb252ZXJzYXRpb24YASABKAsyFy5idWJibGUudjEuQ29udmVyc2F0aW9uEhMKBnBpbm5lZBgCIAEoCEgAiAEBEhIKBW11dGVkGAMgASgISAGIAQESFQoIYXJjaGl2ZWQYBCABKAhIAogBARISCgVkcmFmdBgFIAEoCUgDiAEBEhQKB2Jsb2NrZWQYBiABKAhIBIgBAUIJCgdfcGlubmVkQggKBl9tdXRlZEILCglfYXJjaGl2ZWRCCAoGX2RyYWZ0QgoKCF9ibG9ja2VkImcKC1NldHRpbmdzQWNrEjEKCHNldHRpbmdzGAEgASgLMh8uYnViYmxlLnYxLkNvbnZlcnNhdGlvblNldHRpbmdzEg8KB3ZlcnNpb24YAiABKAQSFAoMcHJldl92ZXJzaW9uGAMgASgEIhAKDkJsb2NrZWRSZXF1ZXN0Ih8KC0Jsb2NrZWRMaXN0EhAKCHVzZXJfaWRzGAEgAygJIjsKEFJlYWRTdGF0ZVJlcXVlc3QSEAoIZ3JvdXBfaWQYASABKAkSFQoNc2VydmVyX21zZ19pZBgCIAEoDCJGCglSZWFkU3RhdGUSEgoKcmVhZF9jb3VudBgBIAEoBBIUCgxtZW1iZXJfY291bnQYAiABKAQSDwoHcmVhZGVycxgDIAMoCSJICgZUeXBpbmcSLQoMY29udmVyc2F0aW9uGAEgASgLMhcuYnViYmxlLnYxLkNvbnZlcnNhdGlvbhIPCgd1c2VyX2lkGAIgASgJIhYKBEtpY2sSDgoGcmVhc29uGAEgASgJIk8KBUVycm9yEiIKBGNvZGUYASABKA4yFC5idWJibGUudjEuRXJyb3JDb2RlEg8KB21lc3NhZ2UYAiABKAkSEQoJcmV0cnlhYmxlGAMgASgIIlsKE1B1c2hSZWdpc3RlclJlcXVlc3QSEAoIcGxhdGZvcm0YASABKAkSDQoFdG9rZW4YAiABKAkSDgoGbG9jYWxlGAMgASgJEhMKC3F1aWV0X3VudGlsGAQgASgDIhcKFVB1c2hVbnJlZ2lzdGVyUmVxdWVzdCIlCg9BcHBTdGF0ZVJlcXVlc3QSEgoKYmFja2dyb3VuZBgBIAEoCCJDChJNZWRpYVVwbG9hZFJlcXVlc3QSDAoEbWltZRgBIAEoCRIMCgRzaXplGAIgASgEEhEKCWZpbGVfbmFtZRgDIAEoCSIvChFNZWRpYVVwbG9hZEhlYWRlchILCgNrZXkYASABKAkSDQoFdmFsdWUYAiABKAkijQEKEU1lZGlhVXBsb2FkVGlja2V0EhIKCnVwbG9hZF91cmwYASABKAkSDgoGbWV0aG9kGAIgASgJEi0KB2hlYWRlcnMYAyADKAsyHC5idWJibGUudjEuTWVkaWFVcGxvYWRIZWFkZXISEQoJbWVkaWFfdXJsGAQgASgJEhIKCmV4cGlyZXNfYXQYBSABKAMi4AEKDEFmdGVyU2VuZEpvYhILCgNhcHAYASABKAkSFQoNc2VydmVyX21zZ19pZBgCIAEoDBIOCgZzZW5kZXIYAyABKAkSFQoNc2VuZGVyX2RldmljZRgEIAEoCRIZChFjb252ZXJzYXRpb25fa2luZBgFIAEoDRIXCg9jb252ZXJzYXRpb25faWQYBiABKAkSFQoNY2xpZW50X21zZ19pZBgHIAEoCRITCgtzZXJ2ZXJfdGltZRgIIAEoAxIUCgxjb250ZW50X3R5cGUYCSABKA0SDwoHY29udGVudBgKIAEoDCppChBDb252ZXJzYXRpb25LaW5kEiEKHUNPTlZFUlNBVElPTl9LSU5EX1VOU1BFQ0lGSUVEEAASCgoGRElSRUNUEAESCQoFR1JPVVAQAhIPCgtTVVBFUl9HUk9VUBADEgoKBlNZU1RFTRAEKlcKC0NvbnRlbnRUeXBlEhwKGENPTlRFTlRfVFlQRV9VTlNQRUNJRklFRBAAEggKBFRFWFQQARIJCgVNRURJQRACEgkKBVZPSUNFEAMSCgoGQ1VTVE9NEAQqQAoMQ3VzdG9tRm9ybWF0Eh0KGUNVU1RPTV9GT1JNQVRfVU5TUEVDSUZJRUQQABIICgRKU09OEAESBwoDWE1MEAIqqAEKCUVudHJ5S2luZBIaChZFTlRSWV9LSU5EX1VOU1BFQ0lGSUVEEAASCwoHTUVTU0FHRRABEgoKBlJFQ0FMTBACEgoKBkRFTEVURRADEhAKDFJFQURfUkVDRUlQVBAEEg8KC1JFQURfQ1VSU09SEAUSEQoNU1lTVEVNX05PVElDRRAGEggKBEVESVQQBxIMCghSRUFDVElPThAIEgwKCFNFVFRJTkdTEAkqNwoJRGlyZWN0aW9uEhkKFURJUkVDVElPTl9VTlNQRUNJRklFRBAAEgcKA09VVBABEgYKAklOEAIqPgoJR3JvdXBLaW5kEhoKFkdST1VQX0tJTkRfVU5TUEVDSUZJRUQQABIKCgZOT1JNQUwQARIJCgVTVVBFUhACKksKCk1lbWJlclJvbGUSGwoXTUVNQkVSX1JPTEVfVU5TUEVDSUZJRUQQABIKCgZNRU1CRVIQARIJCgVBRE1JThACEgkKBU9XTkVSEAMqvQIKCUVycm9yQ29kZRIaChZFUlJPUl9DT0RFX1VOU1BFQ0lGSUVEEAASEwoPTUFMRk9STUVEX0ZSQU1FEAESEwoPVU5LTk9XTl9DT01NQU5EEAISFAoQSEFORFNIQUtFX0ZBSUxFRBADEhMKD1VOQVVUSEVOVElDQVRFRBAEEhUKEVBFUk1JU1NJT05fREVOSUVEEAUSDQoJTk9UX0ZPVU5EEAYSFAoQSU5WQUxJRF9BUkdVTUVOVBAHEg0KCVRPT19MQVJHRRAIEhAKDFJBVEVfTElNSVRFRBAJEg8KC1VOQVZBSUxBQkxFEAoSEgoOQUxSRUFEWV9FWElTVFMQCxISCg5SRUNBTExfRVhQSVJFRBAMEg4KCkdPSU5HX0FXQVkQDRIMCghJTlRFUk5BTBAOEgsKB1RJTUVPVVQQD2IGcHJvdG8z");
var ConversationSchema = /* @__PURE__ */ messageDesc(file_bubble, 0);
var MediaRefSchema = /* @__PURE__ */ messageDesc(file_bubble, 1);
var VoiceSchema = /* @__PURE__ */ messageDesc(file_bubble, 2);
var CustomSchema = /* @__PURE__ */ messageDesc(file_bubble, 3);
var ContentSchema = /* @__PURE__ */ messageDesc(file_bubble, 4);
var ReplyRefSchema = /* @__PURE__ */ messageDesc(file_bubble, 5);
var ForwardRefSchema = /* @__PURE__ */ messageDesc(file_bubble, 6);
var ReactionChangeSchema = /* @__PURE__ */ messageDesc(file_bubble, 7);
var ReactionCountSchema = /* @__PURE__ */ messageDesc(file_bubble, 8);
var ConversationSettingsSchema = /* @__PURE__ */ messageDesc(file_bubble, 9);
var EntryMetaSchema = /* @__PURE__ */ messageDesc(file_bubble, 10);
var EntrySchema = /* @__PURE__ */ messageDesc(file_bubble, 11);
var ChannelEntrySchema = /* @__PURE__ */ messageDesc(file_bubble, 12);
var PingSchema = /* @__PURE__ */ messageDesc(file_bubble, 13);
var PongSchema = /* @__PURE__ */ messageDesc(file_bubble, 14);
var SendRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 15);
var SendAckSchema = /* @__PURE__ */ messageDesc(file_bubble, 16);
var PushSchema = /* @__PURE__ */ messageDesc(file_bubble, 17);
var HistoryRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 18);
var HistoryPageSchema = /* @__PURE__ */ messageDesc(file_bubble, 19);
var SyncRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 20);
var SyncPageSchema = /* @__PURE__ */ messageDesc(file_bubble, 21);
var ConversationsRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 22);
var ConversationSummarySchema = /* @__PURE__ */ messageDesc(file_bubble, 23);
var ConversationListSchema = /* @__PURE__ */ messageDesc(file_bubble, 24);
var MarkReadRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 25);
var MarkReadAckSchema = /* @__PURE__ */ messageDesc(file_bubble, 26);
var UnreadRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 27);
var UnreadCountSchema = /* @__PURE__ */ messageDesc(file_bubble, 28);
var UnreadCountsSchema = /* @__PURE__ */ messageDesc(file_bubble, 29);
var GroupCreateRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 30);
var GroupInfoSchema = /* @__PURE__ */ messageDesc(file_bubble, 31);
var GroupJoinRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 32);
var GroupLeaveRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 33);
var GroupMembersRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 34);
var MemberSchema = /* @__PURE__ */ messageDesc(file_bubble, 35);
var GroupsRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 36);
var GroupListSchema = /* @__PURE__ */ messageDesc(file_bubble, 37);
var GroupUpdateRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 38);
var GroupRoleRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 39);
var GroupTransferRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 40);
var GroupMuteRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 41);
var GroupDismissRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 42);
var GroupMembersChangeRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 43);
var GroupMembersSchema = /* @__PURE__ */ messageDesc(file_bubble, 44);
var OkSchema = /* @__PURE__ */ messageDesc(file_bubble, 45);
var ChannelPullRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 46);
var ChannelPageSchema = /* @__PURE__ */ messageDesc(file_bubble, 47);
var ChannelNotifySchema = /* @__PURE__ */ messageDesc(file_bubble, 48);
var PresenceQuerySchema = /* @__PURE__ */ messageDesc(file_bubble, 49);
var DevicePresenceSchema = /* @__PURE__ */ messageDesc(file_bubble, 50);
var UserPresenceSchema = /* @__PURE__ */ messageDesc(file_bubble, 51);
var PresenceResultSchema = /* @__PURE__ */ messageDesc(file_bubble, 52);
var SearchRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 53);
var SearchHitSchema = /* @__PURE__ */ messageDesc(file_bubble, 54);
var SearchResultsSchema = /* @__PURE__ */ messageDesc(file_bubble, 55);
var SystemPushSchema = /* @__PURE__ */ messageDesc(file_bubble, 56);
var RecallRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 57);
var DeleteRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 58);
var EditRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 59);
var ReactRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 60);
var SettingsRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 61);
var SettingsAckSchema = /* @__PURE__ */ messageDesc(file_bubble, 62);
var BlockedRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 63);
var BlockedListSchema = /* @__PURE__ */ messageDesc(file_bubble, 64);
var ReadStateRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 65);
var ReadStateSchema = /* @__PURE__ */ messageDesc(file_bubble, 66);
var TypingSchema = /* @__PURE__ */ messageDesc(file_bubble, 67);
var KickSchema = /* @__PURE__ */ messageDesc(file_bubble, 68);
var ErrorSchema = /* @__PURE__ */ messageDesc(file_bubble, 69);
var PushRegisterRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 70);
var PushUnregisterRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 71);
var AppStateRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 72);
var MediaUploadRequestSchema = /* @__PURE__ */ messageDesc(file_bubble, 73);
var MediaUploadHeaderSchema = /* @__PURE__ */ messageDesc(file_bubble, 74);
var MediaUploadTicketSchema = /* @__PURE__ */ messageDesc(file_bubble, 75);
var AfterSendJobSchema = /* @__PURE__ */ messageDesc(file_bubble, 76);
var ConversationKind = /* @__PURE__ */ ((ConversationKind2) => {
  ConversationKind2[ConversationKind2["CONVERSATION_KIND_UNSPECIFIED"] = 0] = "CONVERSATION_KIND_UNSPECIFIED";
  ConversationKind2[ConversationKind2["DIRECT"] = 1] = "DIRECT";
  ConversationKind2[ConversationKind2["GROUP"] = 2] = "GROUP";
  ConversationKind2[ConversationKind2["SUPER_GROUP"] = 3] = "SUPER_GROUP";
  ConversationKind2[ConversationKind2["SYSTEM"] = 4] = "SYSTEM";
  return ConversationKind2;
})(ConversationKind || {});
var ConversationKindSchema = /* @__PURE__ */ enumDesc(file_bubble, 0);
var ContentType = /* @__PURE__ */ ((ContentType2) => {
  ContentType2[ContentType2["CONTENT_TYPE_UNSPECIFIED"] = 0] = "CONTENT_TYPE_UNSPECIFIED";
  ContentType2[ContentType2["TEXT"] = 1] = "TEXT";
  ContentType2[ContentType2["MEDIA"] = 2] = "MEDIA";
  ContentType2[ContentType2["VOICE"] = 3] = "VOICE";
  ContentType2[ContentType2["CUSTOM"] = 4] = "CUSTOM";
  return ContentType2;
})(ContentType || {});
var ContentTypeSchema = /* @__PURE__ */ enumDesc(file_bubble, 1);
var CustomFormat = /* @__PURE__ */ ((CustomFormat2) => {
  CustomFormat2[CustomFormat2["CUSTOM_FORMAT_UNSPECIFIED"] = 0] = "CUSTOM_FORMAT_UNSPECIFIED";
  CustomFormat2[CustomFormat2["JSON"] = 1] = "JSON";
  CustomFormat2[CustomFormat2["XML"] = 2] = "XML";
  return CustomFormat2;
})(CustomFormat || {});
var CustomFormatSchema = /* @__PURE__ */ enumDesc(file_bubble, 2);
var EntryKind = /* @__PURE__ */ ((EntryKind2) => {
  EntryKind2[EntryKind2["ENTRY_KIND_UNSPECIFIED"] = 0] = "ENTRY_KIND_UNSPECIFIED";
  EntryKind2[EntryKind2["MESSAGE"] = 1] = "MESSAGE";
  EntryKind2[EntryKind2["RECALL"] = 2] = "RECALL";
  EntryKind2[EntryKind2["DELETE"] = 3] = "DELETE";
  EntryKind2[EntryKind2["READ_RECEIPT"] = 4] = "READ_RECEIPT";
  EntryKind2[EntryKind2["READ_CURSOR"] = 5] = "READ_CURSOR";
  EntryKind2[EntryKind2["SYSTEM_NOTICE"] = 6] = "SYSTEM_NOTICE";
  EntryKind2[EntryKind2["EDIT"] = 7] = "EDIT";
  EntryKind2[EntryKind2["REACTION"] = 8] = "REACTION";
  EntryKind2[EntryKind2["SETTINGS"] = 9] = "SETTINGS";
  return EntryKind2;
})(EntryKind || {});
var EntryKindSchema = /* @__PURE__ */ enumDesc(file_bubble, 3);
var Direction = /* @__PURE__ */ ((Direction2) => {
  Direction2[Direction2["DIRECTION_UNSPECIFIED"] = 0] = "DIRECTION_UNSPECIFIED";
  Direction2[Direction2["OUT"] = 1] = "OUT";
  Direction2[Direction2["IN"] = 2] = "IN";
  return Direction2;
})(Direction || {});
var DirectionSchema = /* @__PURE__ */ enumDesc(file_bubble, 4);
var GroupKind = /* @__PURE__ */ ((GroupKind2) => {
  GroupKind2[GroupKind2["GROUP_KIND_UNSPECIFIED"] = 0] = "GROUP_KIND_UNSPECIFIED";
  GroupKind2[GroupKind2["NORMAL"] = 1] = "NORMAL";
  GroupKind2[GroupKind2["SUPER"] = 2] = "SUPER";
  return GroupKind2;
})(GroupKind || {});
var GroupKindSchema = /* @__PURE__ */ enumDesc(file_bubble, 5);
var MemberRole = /* @__PURE__ */ ((MemberRole2) => {
  MemberRole2[MemberRole2["MEMBER_ROLE_UNSPECIFIED"] = 0] = "MEMBER_ROLE_UNSPECIFIED";
  MemberRole2[MemberRole2["MEMBER"] = 1] = "MEMBER";
  MemberRole2[MemberRole2["ADMIN"] = 2] = "ADMIN";
  MemberRole2[MemberRole2["OWNER"] = 3] = "OWNER";
  return MemberRole2;
})(MemberRole || {});
var MemberRoleSchema = /* @__PURE__ */ enumDesc(file_bubble, 6);
var ErrorCode = /* @__PURE__ */ ((ErrorCode2) => {
  ErrorCode2[ErrorCode2["ERROR_CODE_UNSPECIFIED"] = 0] = "ERROR_CODE_UNSPECIFIED";
  ErrorCode2[ErrorCode2["MALFORMED_FRAME"] = 1] = "MALFORMED_FRAME";
  ErrorCode2[ErrorCode2["UNKNOWN_COMMAND"] = 2] = "UNKNOWN_COMMAND";
  ErrorCode2[ErrorCode2["HANDSHAKE_FAILED"] = 3] = "HANDSHAKE_FAILED";
  ErrorCode2[ErrorCode2["UNAUTHENTICATED"] = 4] = "UNAUTHENTICATED";
  ErrorCode2[ErrorCode2["PERMISSION_DENIED"] = 5] = "PERMISSION_DENIED";
  ErrorCode2[ErrorCode2["NOT_FOUND"] = 6] = "NOT_FOUND";
  ErrorCode2[ErrorCode2["INVALID_ARGUMENT"] = 7] = "INVALID_ARGUMENT";
  ErrorCode2[ErrorCode2["TOO_LARGE"] = 8] = "TOO_LARGE";
  ErrorCode2[ErrorCode2["RATE_LIMITED"] = 9] = "RATE_LIMITED";
  ErrorCode2[ErrorCode2["UNAVAILABLE"] = 10] = "UNAVAILABLE";
  ErrorCode2[ErrorCode2["ALREADY_EXISTS"] = 11] = "ALREADY_EXISTS";
  ErrorCode2[ErrorCode2["RECALL_EXPIRED"] = 12] = "RECALL_EXPIRED";
  ErrorCode2[ErrorCode2["GOING_AWAY"] = 13] = "GOING_AWAY";
  ErrorCode2[ErrorCode2["INTERNAL"] = 14] = "INTERNAL";
  ErrorCode2[ErrorCode2["TIMEOUT"] = 15] = "TIMEOUT";
  return ErrorCode2;
})(ErrorCode || {});
var ErrorCodeSchema = /* @__PURE__ */ enumDesc(file_bubble, 7);

// src/errors.ts
var ADVICE = {
  [1 /* MALFORMED_FRAME */]: "a bug in the client or a corrupted connection; it reconnects",
  [2 /* UNKNOWN_COMMAND */]: "the server is older than this client",
  [3 /* HANDSHAKE_FAILED */]: "check the token, app id and pinned server key",
  [4 /* UNAUTHENTICATED */]: "get a new token",
  [9 /* RATE_LIMITED */]: "slow down and retry later",
  [10 /* UNAVAILABLE */]: "retry later (sends retry with the same client_msg_id)",
  [12 /* RECALL_EXPIRED */]: "the recall window passed",
  [13 /* GOING_AWAY */]: "reconnect and sync",
  [15 /* TIMEOUT */]: "it may have happened: retry with the same ids"
};
var BubbleError = class _BubbleError extends Error {
  name = "BubbleError";
  /** The protocol's error code (ErrorCode.UNSPECIFIED only for local misuse). */
  code;
  /** Whether the same request may succeed later. */
  retryable;
  /** True when the server sent this error; false when the SDK made it. */
  fromServer;
  constructor(code, message, options = {}) {
    super(message, options.cause === void 0 ? void 0 : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.fromServer = options.fromServer ?? false;
  }
  /** The code's name, e.g. "NOT_FOUND". */
  get codeName() {
    return ErrorCode[this.code] ?? `CODE_${this.code}`;
  }
  /** An `Error` frame's body from the server, as a BubbleError. */
  static fromServerError(error, command) {
    const name = ErrorCode[error.code] ?? `CODE_${error.code}`;
    const advice = ADVICE[error.code];
    const text = `${command} failed: ${name}: ${error.message || "(no message)"}${advice ? ` (${advice})` : ""}`;
    return new _BubbleError(error.code, text, { retryable: error.retryable, fromServer: true });
  }
  /** The connection dropped before the answer came; retrying is safe for sends. */
  static disconnected(what, reason) {
    return new _BubbleError(10 /* UNAVAILABLE */, `${what}: the connection dropped before the answer (${reason}); retry once reconnected`, {
      retryable: true
    });
  }
  /** No answer within the time allowed; the request may still have happened. */
  static timeout(what, ms) {
    return new _BubbleError(15 /* TIMEOUT */, `${what}: no answer within ${ms} ms; it may have happened: retry with the same ids`, {
      retryable: true
    });
  }
  /** The client was closed by the app. */
  static closed(what) {
    return new _BubbleError(13 /* GOING_AWAY */, `${what}: the client is closed; create a new BubbleClient to talk to the server again`);
  }
  /** The server broke the protocol (an answer that does not decode, a bad record). */
  static protocol(message, cause) {
    return new _BubbleError(1 /* MALFORMED_FRAME */, message, { cause });
  }
  /** The app passed something this SDK cannot use. */
  static invalid(message) {
    return new _BubbleError(7 /* INVALID_ARGUMENT */, message);
  }
};

// src/frame.ts
var HEADER_LEN = 14;
var MAGIC = 45243;
var PROTOCOL_VERSION = 1;
var FLAG_ENCRYPTED = 1;
var FLAG_RESPONSE = 2;
var DEFAULT_MAX_BODY = 1024 * 1024;
var FrameError = class extends Error {
  name = "FrameError";
};
function encodeHeader(header) {
  const { flags, command, seq, bodyLength } = header;
  if ((flags & ~(FLAG_ENCRYPTED | FLAG_RESPONSE)) !== 0) {
    throw new FrameError(`flags 0x${flags.toString(16)} set bits other than ENCRYPTED and RESPONSE`);
  }
  checkRange(command, 65535, "command");
  checkRange(seq, 4294967295, "seq");
  checkRange(bodyLength, 4294967295, "body length");
  const out = new Uint8Array(HEADER_LEN);
  const view = new DataView(out.buffer);
  view.setUint16(0, MAGIC);
  view.setUint8(2, PROTOCOL_VERSION);
  view.setUint8(3, flags);
  view.setUint16(4, command);
  view.setUint32(6, seq);
  view.setUint32(10, bodyLength);
  return out;
}
function encodeFrame(frame) {
  const header = encodeHeader({ ...frame, bodyLength: frame.body.length });
  const out = new Uint8Array(HEADER_LEN + frame.body.length);
  out.set(header, 0);
  out.set(frame.body, HEADER_LEN);
  return out;
}
function decodeHeader(bytes, maxBody = DEFAULT_MAX_BODY) {
  if (bytes.length < HEADER_LEN) {
    throw new FrameError(`a frame header is ${HEADER_LEN} bytes; got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LEN);
  const magic = view.getUint16(0);
  if (magic !== MAGIC) {
    throw new FrameError(`bad magic 0x${magic.toString(16)}: the peer is not a bubble server`);
  }
  const version = view.getUint8(2);
  if (version !== PROTOCOL_VERSION) {
    throw new FrameError(`protocol version ${version}; this SDK speaks version ${PROTOCOL_VERSION}`);
  }
  const flags = view.getUint8(3);
  if ((flags & ~(FLAG_ENCRYPTED | FLAG_RESPONSE)) !== 0) {
    throw new FrameError(`unknown flag bits in 0x${flags.toString(16)}`);
  }
  const bodyLength = view.getUint32(10);
  if (bodyLength > maxBody) {
    throw new FrameError(`body of ${bodyLength} bytes is over the limit of ${maxBody}`);
  }
  return { flags, command: view.getUint16(4), seq: view.getUint32(6), bodyLength };
}
function decodeFrame(bytes, maxBody = DEFAULT_MAX_BODY) {
  const header = decodeHeader(bytes, maxBody);
  const actual = bytes.length - HEADER_LEN;
  if (actual !== header.bodyLength) {
    throw new FrameError(`the header says ${header.bodyLength} body bytes but ${actual} follow: not exactly one frame`);
  }
  return {
    flags: header.flags,
    command: header.command,
    seq: header.seq,
    body: bytes.slice(HEADER_LEN)
  };
}
function checkRange(value, max, field) {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new FrameError(`${field} ${value} is out of range 0..${max}`);
  }
}

// src/crypto.ts
function webCrypto() {
  const c = globalThis.crypto;
  if (!c?.subtle) {
    throw BubbleError.invalid(
      "WebCrypto (globalThis.crypto.subtle) is not available: use Node 20 or later, or a browser page served over https or from localhost"
    );
  }
  return c;
}
function subtle() {
  return webCrypto().subtle;
}
function buf(bytes) {
  return bytes.buffer instanceof ArrayBuffer ? bytes : new Uint8Array(bytes);
}
function randomBytes(n) {
  const out = new Uint8Array(n);
  webCrypto().getRandomValues(out);
  return out;
}
async function sha256(data) {
  return new Uint8Array(await subtle().digest("SHA-256", buf(data)));
}
async function hkdf(ikm, salt, info) {
  const key = await subtle().importKey("raw", buf(ikm), "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt: buf(salt), info: buf(utf8(info)) }, key, 256);
  return new Uint8Array(bits);
}
var ZERO_NONCE = new Uint8Array(12);
async function aesKey(key, usage) {
  if (key.length !== 32) throw BubbleError.invalid(`an AES-256 key is 32 bytes; got ${key.length}`);
  return subtle().importKey("raw", buf(key), "AES-GCM", false, [usage]);
}
async function seal(key, nonce, aad, plaintext) {
  const k = await aesKey(key, "encrypt");
  const out = await subtle().encrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(plaintext));
  return new Uint8Array(out);
}
async function open(key, nonce, aad, sealed) {
  const k = await aesKey(key, "decrypt");
  const out = await subtle().decrypt({ name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: 128 }, k, buf(sealed));
  return new Uint8Array(out);
}
var P256 = { name: "ECDH", namedCurve: "P-256" };
async function generateEcdhKeyPair() {
  const pair = await subtle().generateKey(P256, false, ["deriveBits"]);
  const publicPoint = new Uint8Array(await subtle().exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicPoint };
}
async function importPeerPoint(point) {
  if (point.length !== 65 || point[0] !== 4) {
    throw BubbleError.protocol(`the server's P-256 point is not an uncompressed SEC1 point (65 bytes starting 04)`);
  }
  return subtle().importKey("raw", buf(point), P256, false, []);
}
async function ecdhSharedX(privateKey, peer) {
  return new Uint8Array(await subtle().deriveBits({ name: "ECDH", public: peer }, privateKey, 256));
}
async function rsaOaepEncrypt(publicKey, plaintext) {
  return new Uint8Array(await subtle().encrypt({ name: "RSA-OAEP" }, publicKey, buf(plaintext)));
}
function pemToDer(pem, label) {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!match) throw BubbleError.invalid(`not a PEM "${label}" block: expected -----BEGIN ${label}-----`);
  const b64 = match[1].replace(/\s+/g, "");
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

// src/handshake.ts
var Info = {
  hello: "bubble/v1 hello",
  answer: "bubble/v1 answer",
  wrap: "bubble/v1 wrap",
  c2s: "bubble/v1 c2s",
  s2c: "bubble/v1 s2c",
  resumption: "bubble/v1 resumption",
  resumeHello: "bubble/v1 resume hello",
  resumeAnswer: "bubble/v1 resume answer"
};
var HANDSHAKE_VERSION = 1;
var POINT_LEN = 65;
var WRAPPED_KEY_LEN = 48;
var RSA_FIXED = 32 + POINT_LEN;
var OAEP_OVERHEAD = 66;
var platformRandomness = {
  bytes: randomBytes,
  ecdhKeyPair: generateEcdhKeyPair,
  rsaEncrypt: rsaOaepEncrypt
};
function encodeMeta(meta) {
  return concat(str8(meta.appId), str8(meta.deviceId), str8(meta.platform), str8(meta.clientVersion));
}
function maxTokenBytes(modulusBytes) {
  return modulusBytes - OAEP_OVERHEAD - RSA_FIXED;
}
async function startFullHandshake(server, token, meta, random = platformRandomness) {
  const tokenBytes = utf8(token);
  const room = maxTokenBytes(server.modulusBytes);
  if (tokenBytes.length > room) {
    throw BubbleError.invalid(
      `the token is ${tokenBytes.length} bytes; a ${server.modulusBytes * 8}-bit server key carries at most ${room} (auth.md "Token capacity"): issue shorter tokens or use a larger server key`
    );
  }
  const r = random.bytes(32);
  const ecdh = await random.ecdhKeyPair();
  const rsaBlock = await random.rsaEncrypt(server.publicKey, concat(r, ecdh.publicPoint, tokenBytes));
  if (rsaBlock.length !== server.modulusBytes) {
    throw BubbleError.protocol(`RSA-OAEP gave ${rsaBlock.length} bytes for a ${server.modulusBytes}-byte modulus`);
  }
  const head = concat(new Uint8Array([HANDSHAKE_VERSION]), server.keyId, u16(server.modulusBytes), rsaBlock);
  const helloKey = await hkdf(r, new Uint8Array(0), Info.hello);
  const sealedMeta = await seal(helloKey, ZERO_NONCE, head, concat(server.keyId, encodeMeta(meta)));
  const hello = concat(head, sealedMeta);
  const transcript = await sha256(hello);
  const answerKey = await hkdf(r, transcript, Info.answer);
  return { resumed: false, hello, transcript, answerKey, ecdh };
}
async function startResumption(ticket, meta, random = platformRandomness) {
  const nonce = random.bytes(32);
  const ecdh = await random.ecdhKeyPair();
  const head = concat(new Uint8Array([HANDSHAKE_VERSION]), u16(ticket.ticket.length), ticket.ticket, nonce, ecdh.publicPoint);
  const helloKey = await hkdf(ticket.resumptionSecret, nonce, Info.resumeHello);
  const hello = concat(head, await seal(helloKey, ZERO_NONCE, head, encodeMeta(meta)));
  const transcript = await sha256(hello);
  const answerKey = await hkdf(ticket.resumptionSecret, transcript, Info.resumeAnswer);
  return { resumed: true, hello, transcript, answerKey, ecdh };
}
async function openAnswer(pending, answer) {
  if (answer.length < 1 || answer[0] !== HANDSHAKE_VERSION) {
    throw BubbleError.protocol(`the handshake answer has version ${answer[0]}; this SDK speaks version ${HANDSHAKE_VERSION}`);
  }
  let inner;
  try {
    inner = await open(pending.answerKey, ZERO_NONCE, answer.subarray(0, 1), answer.subarray(1));
  } catch (cause) {
    throw BubbleError.protocol("the handshake answer does not open: the peer does not hold the pinned server key", cause);
  }
  try {
    const reader = new Reader(inner, "the handshake answer");
    const serverPoint = reader.take(POINT_LEN, "S");
    const wrappedKey = reader.take(WRAPPED_KEY_LEN, "W");
    const ticketLifetimeSecs = reader.u32("ticket lifetime");
    const ticket = reader.take(reader.u16("ticket length"), "ticket");
    reader.end();
    return { serverPoint, wrappedKey, ticketLifetimeSecs, ticket };
  } catch (cause) {
    throw BubbleError.protocol(`the handshake answer is malformed: ${String(cause)}`, cause);
  }
}
async function finishHandshake(pending, answer, now = Date.now()) {
  const opened = await openAnswer(pending, answer);
  const z = await ecdhSharedX(pending.ecdh.privateKey, await importPeerPoint(opened.serverPoint));
  const wrapKey = await hkdf(z, pending.transcript, Info.wrap);
  let sessionKey;
  try {
    sessionKey = await open(wrapKey, ZERO_NONCE, opened.serverPoint, opened.wrappedKey);
  } catch (cause) {
    throw BubbleError.protocol("the wrapped session key does not open: the answer was not made for this hello", cause);
  }
  const th = pending.transcript;
  const [c2sKey, s2cKey, resumptionSecret] = await Promise.all([
    hkdf(sessionKey, th, Info.c2s),
    hkdf(sessionKey, th, Info.s2c),
    hkdf(sessionKey, th, Info.resumption)
  ]);
  const ticket = opened.ticket.length > 0 && opened.ticketLifetimeSecs > 0 ? { ticket: opened.ticket, resumptionSecret, expiresAt: now + opened.ticketLifetimeSecs * 1e3 } : void 0;
  return { resumed: pending.resumed, transcript: th, c2sKey, s2cKey, resumptionSecret, ticket };
}
function ticketUsable(ticket, now = Date.now()) {
  return ticket !== void 0 && ticket.expiresAt > now && ticket.ticket.length > 0 && ticket.ticket.length <= 1024;
}

// src/records.ts
var TAG_LEN = 16;
function recordNonce(counter) {
  return concat(new Uint8Array(4), u64(counter));
}
async function sealRecord(key, counter, frame) {
  const flags = frame.flags | FLAG_ENCRYPTED;
  const header = encodeHeader({ flags, command: frame.command, seq: frame.seq, bodyLength: frame.body.length + TAG_LEN });
  const body = await seal(key, recordNonce(counter), header, frame.body);
  return { flags, command: frame.command, seq: frame.seq, body };
}
async function openRecord(key, counter, frame) {
  if ((frame.flags & FLAG_ENCRYPTED) === 0) {
    throw new RecordError(`a plaintext ${frame.command} frame arrived after the handshake: every frame must be a record`);
  }
  if (frame.body.length < TAG_LEN) {
    throw new RecordError(`a record of ${frame.body.length} bytes is shorter than its tag`);
  }
  const header = encodeHeader({ flags: frame.flags, command: frame.command, seq: frame.seq, bodyLength: frame.body.length });
  let body;
  try {
    body = await open(key, recordNonce(counter), header, frame.body);
  } catch (cause) {
    throw new RecordError(`record ${counter} does not open (forged, replayed, reordered or from another session)`, { cause });
  }
  return { flags: frame.flags & ~FLAG_ENCRYPTED, command: frame.command, seq: frame.seq, body };
}
var RecordError = class extends Error {
  name = "RecordError";
};
var RecordChannel = class {
  constructor(sendKey, receiveKey) {
    this.sendKey = sendKey;
    this.receiveKey = receiveKey;
  }
  sendKey;
  receiveKey;
  sent = 0n;
  received = 0n;
  broken;
  /** Seals the next outgoing record. Call in the order the records go on the wire. */
  async seal(frame) {
    const counter = this.sent++;
    return sealRecord(this.sendKey, counter, frame);
  }
  /** Opens the next incoming record. Call in the order the records came off the wire. */
  async open(frame) {
    if (this.broken) throw this.broken;
    const counter = this.received++;
    try {
      return await openRecord(this.receiveKey, counter, frame);
    } catch (e) {
      this.broken = e instanceof RecordError ? e : new RecordError(String(e));
      throw this.broken;
    }
  }
};

// src/transport.ts
var OPEN2 = 1;
function resolveWebSocket(option) {
  const ctor = option ?? globalThis.WebSocket;
  if (!ctor) {
    throw BubbleError.invalid(
      'no WebSocket: this runtime has no global WebSocket (Node 20); pass one as the `WebSocket` option, e.g. `import { WebSocket } from "ws"`'
    );
  }
  return ctor;
}
var FrameSocket = class _FrameSocket {
  constructor(socket, url) {
    this.socket = socket;
    this.url = url;
  }
  socket;
  url;
  ended = false;
  /**
   * Opens `url` and resolves once the socket is open. Frames that arrive
   * later go to `handlers` (set before any can arrive).
   */
  static open(ctor, url, handlers, maxBody, timeoutMs) {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new ctor(url);
      } catch (cause) {
        reject(new BubbleError(10 /* UNAVAILABLE */, `cannot open a WebSocket to ${url}: ${String(cause)}`, { retryable: true, cause }));
        return;
      }
      socket.binaryType = "arraybuffer";
      const conn = new _FrameSocket(socket, url);
      let opened = false;
      const timer = setTimeout(() => {
        if (opened) return;
        conn.finish(handlers, "open timed out");
        reject(new BubbleError(10 /* UNAVAILABLE */, `the WebSocket to ${url} did not open within ${timeoutMs} ms`, { retryable: true }));
      }, timeoutMs);
      socket.onopen = () => {
        opened = true;
        clearTimeout(timer);
        resolve(conn);
      };
      socket.onerror = () => {
      };
      socket.onclose = (event) => {
        clearTimeout(timer);
        const reason = `WebSocket closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`;
        if (!opened) {
          conn.ended = true;
          reject(new BubbleError(10 /* UNAVAILABLE */, `cannot connect to ${url}: ${reason}`, { retryable: true }));
          return;
        }
        conn.finish(handlers, reason);
      };
      socket.onmessage = (event) => {
        if (conn.ended) return;
        const data = event.data;
        if (!(data instanceof ArrayBuffer)) {
          conn.finish(handlers, "the server sent a text WebSocket message; frames are binary");
          return;
        }
        let frame;
        try {
          frame = decodeFrame(new Uint8Array(data), maxBody);
        } catch (e) {
          conn.finish(handlers, `the server sent a message that is not a frame: ${e.message}`);
          return;
        }
        handlers.frame(frame);
      };
    });
  }
  /** Whether frames can still be sent. */
  get isOpen() {
    return !this.ended && this.socket.readyState === OPEN2;
  }
  /** Sends one frame as one binary message; false when the socket is gone. */
  send(frame) {
    if (!this.isOpen) return false;
    try {
      this.socket.send(encodeFrame(frame));
      return true;
    } catch {
      return false;
    }
  }
  /** Closes the socket (1000, normal closure) without reporting to the handlers. */
  close(reason = "closed by the client") {
    this.ended = true;
    try {
      this.socket.close(1e3, reason.slice(0, 120));
    } catch {
    }
  }
  finish(handlers, reason) {
    if (this.ended) return;
    this.ended = true;
    try {
      this.socket.close(1e3);
    } catch {
    }
    handlers.closed(reason);
  }
};

// src/connection.ts
var HELLO_SEQ = 1;
var Connection = class _Connection {
  constructor(socket, channel, keys, events, dropInbound) {
    this.socket = socket;
    this.channel = channel;
    this.keys = keys;
    this.events = events;
    this.dropInbound = dropInbound;
  }
  socket;
  channel;
  keys;
  events;
  dropInbound;
  nextSeq = HELLO_SEQ + 1;
  waiting = /* @__PURE__ */ new Map();
  sendQueue = Promise.resolve();
  receiveQueue = Promise.resolve();
  ended = false;
  /** When the last frame arrived (ms since the epoch): the heartbeat watches it. */
  lastHeard = Date.now();
  /**
   * Opens a WebSocket, sends the hello, and turns the answer into an
   * established connection. A refusal comes back as the server's
   * BubbleError (HANDSHAKE_FAILED, RATE_LIMITED, UNAVAILABLE…).
   */
  static async establish(options, pending, events) {
    let settle;
    const firstFrame = new Promise((resolve) => settle = resolve);
    let established;
    const early = [];
    let earlyClose;
    const socket = await FrameSocket.open(
      options.WebSocket,
      options.url,
      {
        frame: (frame) => {
          if (established) established.receive(frame);
          else if (settle) {
            settle(frame);
            settle = void 0;
          } else early.push(frame);
        },
        closed: (reason) => {
          if (established) established.end(reason);
          else if (settle) {
            settle(reason);
            settle = void 0;
          } else earlyClose = reason;
        }
      },
      options.maxBody,
      options.timeoutMs
    );
    const command = pending.resumed ? Command.ResumeHello : Command.HandshakeHello;
    socket.send({ flags: 0, command, seq: HELLO_SEQ, body: pending.hello });
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(`no handshake answer within ${options.timeoutMs} ms`), options.timeoutMs);
    });
    const answer = await Promise.race([firstFrame, timeout]);
    clearTimeout(timer);
    const what = pending.resumed ? "resumption" : "handshake";
    if (typeof answer === "string") {
      socket.close();
      throw new BubbleError(10 /* UNAVAILABLE */, `${what} with ${options.url} failed: ${answer}`, { retryable: true });
    }
    if (answer.command === Command.Error) {
      socket.close();
      throw BubbleError.fromServerError(decodeError(answer.body), what);
    }
    if (answer.command !== Command.HandshakeAnswer || (answer.flags & FLAG_RESPONSE) === 0 || answer.seq !== HELLO_SEQ) {
      socket.close();
      throw BubbleError.protocol(`${what}: expected HandshakeAnswer for seq ${HELLO_SEQ}, got ${commandName(answer.command)} seq ${answer.seq}`);
    }
    let keys;
    try {
      keys = await finishHandshake(pending, answer.body);
    } catch (e) {
      socket.close();
      throw e;
    }
    const connection = new _Connection(socket, new RecordChannel(keys.c2sKey, keys.s2cKey), keys, events, options.dropInbound);
    established = connection;
    for (const frame of early) connection.receive(frame);
    if (earlyClose !== void 0) connection.end(earlyClose);
    return connection;
  }
  /** Whether requests can still be sent. */
  get isOpen() {
    return !this.ended && this.socket.isOpen;
  }
  /** The gate's URL. */
  get url() {
    return this.socket.url;
  }
  /** Sends a request and resolves with its answer frame (an Error answer rejects). */
  request(command, body, what, timeoutMs) {
    if (!this.isOpen) return Promise.reject(BubbleError.disconnected(what, "not connected"));
    const seq = this.allocateSeq();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(BubbleError.timeout(what, timeoutMs));
      }, timeoutMs);
      this.waiting.set(seq, { what, resolve, reject, timer });
      this.write({ flags: 0, command, seq, body });
    });
  }
  /** Sends a frame that gets no answer (Typing). */
  fire(command, body) {
    if (!this.isOpen) return false;
    this.write({ flags: 0, command, seq: this.allocateSeq(), body });
    return true;
  }
  /** Closes the connection; waiting requests fail as disconnected. */
  close(reason) {
    this.socket.close(reason);
    this.end(reason);
  }
  allocateSeq() {
    const seq = this.nextSeq;
    this.nextSeq = this.nextSeq >= 4294967295 ? 1 : this.nextSeq + 1;
    return seq;
  }
  write(frame) {
    this.sendQueue = this.sendQueue.then(async () => {
      if (this.ended) return;
      const sealed = await this.channel.seal(frame);
      if (!this.socket.send(sealed)) this.end("the WebSocket closed while sending");
    });
  }
  receive(frame) {
    this.lastHeard = Date.now();
    this.receiveQueue = this.receiveQueue.then(async () => {
      if (this.ended) return;
      let plain;
      try {
        plain = await this.channel.open(frame);
      } catch (e) {
        this.close(`a record from the server failed: ${e.message}`);
        return;
      }
      if (this.dropInbound?.(plain)) return;
      this.dispatch(plain);
    });
  }
  dispatch(frame) {
    if ((frame.flags & FLAG_RESPONSE) !== 0) {
      const waiting = this.waiting.get(frame.seq);
      if (!waiting) return;
      this.waiting.delete(frame.seq);
      clearTimeout(waiting.timer);
      if (frame.command === Command.Error) waiting.reject(BubbleError.fromServerError(decodeError(frame.body), waiting.what));
      else waiting.resolve(frame);
      return;
    }
    this.events.push(frame);
  }
  end(reason) {
    if (this.ended) return;
    this.ended = true;
    for (const [seq, waiting] of this.waiting) {
      clearTimeout(waiting.timer);
      waiting.reject(BubbleError.disconnected(waiting.what, reason));
      this.waiting.delete(seq);
    }
    this.events.closed(reason);
  }
};
function decodeError(body) {
  try {
    return fromBinary(ErrorSchema, body);
  } catch {
    return fromBinary(ErrorSchema, new Uint8Array(0));
  }
}

// src/content.ts
function direct(userId) {
  return create(ConversationSchema, { kind: 1 /* DIRECT */, id: userId });
}
function group(groupId) {
  return create(ConversationSchema, { kind: 2 /* GROUP */, id: groupId });
}
function superGroup(groupId) {
  return create(ConversationSchema, { kind: 3 /* SUPER_GROUP */, id: groupId });
}
function systemConversation() {
  return create(ConversationSchema, { kind: 4 /* SYSTEM */, id: "system" });
}
function conversationKey(conversation) {
  if (!conversation) return "none:";
  const kind = ConversationKind[conversation.kind] ?? String(conversation.kind);
  return `${kind.toLowerCase()}:${conversation.id}`;
}
function textContent(text) {
  return create(ContentSchema, { type: 1 /* TEXT */, body: utf8(text) });
}
function mediaContent(media) {
  return create(ContentSchema, { type: 2 /* MEDIA */, body: toBinary(MediaRefSchema, create(MediaRefSchema, media)) });
}
function voiceContent(voice) {
  return create(ContentSchema, { type: 3 /* VOICE */, body: toBinary(VoiceSchema, create(VoiceSchema, voice)) });
}
function jsonContent(type, value) {
  const custom = create(CustomSchema, { format: 1 /* JSON */, type, body: utf8(JSON.stringify(value)) });
  return create(ContentSchema, { type: 4 /* CUSTOM */, body: toBinary(CustomSchema, custom) });
}
function textOf(value) {
  const content = value?.$typeName === "bubble.v1.Content" ? value : value?.content;
  if (!content || content.type !== 1 /* TEXT */) return void 0;
  return new TextDecoder().decode(content.body);
}
function mediaOf(content) {
  return content?.type === 2 /* MEDIA */ ? fromBinary(MediaRefSchema, content.body) : void 0;
}
function voiceOf(content) {
  return content?.type === 3 /* VOICE */ ? fromBinary(VoiceSchema, content.body) : void 0;
}
function customOf(content) {
  return content?.type === 4 /* CUSTOM */ ? fromBinary(CustomSchema, content.body) : void 0;
}

// src/cursor.ts
function copyCursor(cursor) {
  return { version: cursor.version, channels: { ...cursor.channels } };
}
var MemoryCursorStore = class {
  cursor;
  constructor(initial) {
    this.cursor = initial && copyCursor(initial);
  }
  async load() {
    return this.cursor && copyCursor(this.cursor);
  }
  async save(cursor) {
    this.cursor = copyCursor(cursor);
  }
};
var WebStorageCursorStore = class {
  constructor(storage, key) {
    this.storage = storage;
    this.key = key;
  }
  storage;
  key;
  async load() {
    const text = this.storage.getItem(this.key);
    if (text === null) return void 0;
    try {
      const raw = JSON.parse(text);
      const channels = {};
      for (const [group2, seq] of Object.entries(raw.channels ?? {})) channels[group2] = BigInt(seq);
      return { version: BigInt(raw.version), channels };
    } catch {
      return void 0;
    }
  }
  async save(cursor) {
    const channels = {};
    for (const [group2, seq] of Object.entries(cursor.channels)) channels[group2] = seq.toString();
    this.storage.setItem(this.key, JSON.stringify({ version: cursor.version.toString(), channels }));
  }
};

// src/emitter.ts
var Emitter = class {
  constructor(onListenerError = () => {
  }) {
    this.onListenerError = onListenerError;
  }
  onListenerError;
  listeners = /* @__PURE__ */ new Map();
  /** Calls `listener` on every `event`; returns a function that removes it. */
  on(event, listener) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(listener);
    return () => this.off(event, listener);
  }
  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }
  /**
   * The next `event` that satisfies `accept`, as a promise; it rejects after
   * `timeoutMs` (when given) with a message naming what was awaited.
   */
  once(event, accept = () => true, timeoutMs) {
    return new Promise((resolve, reject) => {
      let timer;
      const off = this.on(event, (value) => {
        if (!accept(value)) return;
        off();
        if (timer !== void 0) clearTimeout(timer);
        resolve(value);
      });
      if (timeoutMs !== void 0) {
        timer = setTimeout(() => {
          off();
          reject(new Error(`no "${String(event)}" event within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }
  emit(event, value) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(value);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
};

// src/ordering.ts
function decideInboxPush(cursor, entryVersion, prevVersion) {
  if (entryVersion <= cursor) return "stale";
  if (prevVersion > cursor) return "gap";
  return "apply";
}
function decideChannelNotify(last, seq, prevSeq) {
  if (last === void 0) return "apply";
  if (seq <= last) return "stale";
  if (prevSeq > last) return "gap";
  return "apply";
}
function cursorAfterOwnSend(cursor, ack) {
  if (ack.duplicate || ack.version === 0n) return cursor;
  return ack.prevVersion === cursor ? ack.version : cursor;
}
function decideOwnChannelSend(last, seq) {
  if (last === void 0) return "apply";
  if (seq <= last) return "stale";
  if (seq > last + 1n) return "gap";
  return "apply";
}

// src/inbox.ts
var BROADCAST_GROUP = "~broadcast";
var Inbox = class {
  constructor(deps) {
    this.deps = deps;
  }
  deps;
  cursor = { version: 0n, channels: {} };
  queue = Promise.resolve();
  saving = Promise.resolve();
  /** Loads the saved cursor; call once before the first connect. */
  async load() {
    const saved = await this.deps.store.load();
    if (saved) this.cursor = copyCursor(saved);
  }
  /** A copy of the cursor now. */
  get position() {
    return copyCursor(this.cursor);
  }
  /** Resolves when every task queued so far has run. */
  idle() {
    return this.queue.then(() => this.saving);
  }
  /** After each (re)connect: sync the inbox from the cursor, then pull the known super groups. */
  connected() {
    this.enqueue(async () => {
      if (!await this.catchUp()) return;
      for (const group2 of Object.keys(this.cursor.channels)) await this.pullGap(group2, this.cursor.channels[group2]);
      this.deps.emit("synced", { version: this.cursor.version });
    });
  }
  /** A push frame (Push, ChannelNotify or SystemPush). */
  push(frame) {
    this.enqueue(async () => {
      switch (frame.command) {
        case Command.Push:
          return this.onInboxPush(frame.body);
        case Command.ChannelNotify: {
          const notify = fromBinary(ChannelNotifySchema, frame.body);
          return this.onChannel(notify.groupId, notify.seq, notify.prevSeq, notify.entry);
        }
        case Command.SystemPush: {
          const push = fromBinary(SystemPushSchema, frame.body);
          return this.onChannel(BROADCAST_GROUP, push.seq, push.prevSeq, push.entry);
        }
      }
    });
  }
  /** This device's own send was acknowledged (protocol.md 4.1). */
  ownSend(ack, groupId) {
    this.enqueue(async () => {
      if (ack.seq > 0n && groupId !== void 0) {
        const last = this.cursor.channels[groupId];
        const decision = decideOwnChannelSend(last, ack.seq);
        if (decision === "apply") this.moveChannel(groupId, ack.seq);
        else if (decision === "gap") {
          this.deps.emit("gap", { kind: "channel", group: groupId, after: last, prev: ack.seq - 1n });
          await this.pullGap(groupId, last);
        }
        return;
      }
      const next = cursorAfterOwnSend(this.cursor.version, ack);
      if (next !== this.cursor.version) {
        this.cursor.version = next;
        this.save();
      }
    });
  }
  enqueue(task) {
    this.queue = this.queue.then(task).catch((error) => {
      this.deps.emit("warning", { error: error instanceof Error ? error : new Error(String(error)) });
    });
  }
  async onInboxPush(body) {
    const push = fromBinary(PushSchema, body);
    const entry = push.entry;
    if (!entry) return;
    const decision = decideInboxPush(this.cursor.version, entry.version, push.prevVersion);
    if (decision === "stale") return;
    if (decision === "gap") {
      this.deps.emit("gap", { kind: "inbox", group: void 0, after: this.cursor.version, prev: push.prevVersion });
      if (await this.catchUp()) this.deps.emit("synced", { version: this.cursor.version });
      return;
    }
    this.cursor.version = entry.version;
    this.save();
    this.deps.emit("entry", entry);
  }
  /**
   * Syncs from the cursor until the server has no more, delivering each
   * entry once. False when a page failed (the connection dropped): the next
   * connect or push retries from where delivery stopped.
   */
  async catchUp() {
    for (; ; ) {
      let page;
      try {
        page = await this.deps.sync(this.cursor.version, this.deps.pageSize);
      } catch (error) {
        this.deps.emit("warning", { error });
        return false;
      }
      for (const entry of page.entries) {
        if (entry.version <= this.cursor.version) continue;
        this.cursor.version = entry.version;
        this.deps.emit("entry", entry);
      }
      this.save();
      if (!page.hasMore || page.entries.length === 0) return true;
    }
  }
  async onChannel(groupId, seq, prevSeq, entry) {
    const event = groupId === BROADCAST_GROUP ? "system" : "channel";
    const last = this.cursor.channels[groupId];
    let decision = decideChannelNotify(last, seq, prevSeq);
    if (decision === "apply" && !entry) decision = "gap";
    if (decision === "stale") return;
    if (decision === "gap") {
      const after = last ?? prevSeq;
      this.deps.emit("gap", { kind: "channel", group: groupId, after, prev: prevSeq });
      await this.pullGap(groupId, after);
      return;
    }
    this.moveChannel(groupId, seq);
    this.deps.emit(event, entry);
  }
  /** Pulls a group's entries after `after`, in order, each once, up to its newest. */
  async pullGap(groupId, after) {
    const event = groupId === BROADCAST_GROUP ? "system" : "channel";
    let from = after;
    for (; ; ) {
      let page;
      try {
        page = await this.deps.pullChannel(groupId, from, this.deps.pageSize);
      } catch (error) {
        if (error instanceof BubbleError && (error.code === 5 /* PERMISSION_DENIED */ || error.code === 6 /* NOT_FOUND */)) {
          delete this.cursor.channels[groupId];
          this.save();
          return;
        }
        this.deps.emit("warning", { error });
        return;
      }
      for (const entry of page.entries) {
        const last = this.cursor.channels[groupId];
        if (last !== void 0 && entry.seq <= last) continue;
        this.moveChannel(groupId, entry.seq);
        this.deps.emit(event, entry);
        from = entry.seq;
      }
      if (!page.hasMore || page.entries.length === 0) return;
    }
  }
  moveChannel(groupId, seq) {
    this.cursor.channels[groupId] = seq;
    this.save();
  }
  /** Saves a copy of the cursor, one save at a time, in order. */
  save() {
    const snapshot = copyCursor(this.cursor);
    this.saving = this.saving.then(() => this.deps.store.save(snapshot)).catch((error) => this.deps.emit("warning", { error: error instanceof Error ? error : new Error(String(error)) }));
  }
};

// src/selector.ts
async function askSelector(base, timeoutMs, fetchImpl) {
  const doFetch = fetchImpl ?? globalThis.fetch;
  if (!doFetch) throw BubbleError.invalid("no fetch in this runtime: pass `fetch` in the options, or connect to a gate URL directly");
  const url = base.replace(/\/+$/, "") + "/v1/gate";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  let status;
  let text;
  try {
    const response = await doFetch(url, { signal: abort.signal });
    status = response.status;
    text = await response.text();
    if (!response.ok) {
      throw new BubbleError(10 /* UNAVAILABLE */, `the selector ${url} answered ${status}: ${text.slice(0, 200)}`, { retryable: true });
    }
  } catch (cause) {
    if (cause instanceof BubbleError) throw cause;
    const why = abort.signal.aborted ? `no answer within ${timeoutMs} ms` : String(cause);
    throw new BubbleError(10 /* UNAVAILABLE */, `cannot reach the selector ${url}: ${why}`, { retryable: true, cause });
  } finally {
    clearTimeout(timer);
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    throw new BubbleError(10 /* UNAVAILABLE */, `the selector ${url} answered ${status} with something that is not JSON: ${text.slice(0, 100)}`, { retryable: true, cause });
  }
  if (typeof body.ws !== "string" || body.ws === "") {
    throw new BubbleError(10 /* UNAVAILABLE */, `the selector ${url} named no WebSocket gate (is the server's gate.ws off?): ${text.slice(0, 200)}`, { retryable: true });
  }
  const fingerprint = body.server_key?.fingerprint_sha256;
  return {
    node: typeof body.node === "string" ? body.node : "",
    ws: body.ws,
    serverKeyFingerprint: typeof fingerprint === "string" ? fingerprint : void 0
  };
}
async function pickGate(bases, start, timeoutMs, fetchImpl) {
  if (bases.length === 0) throw BubbleError.invalid("no selector URL given");
  const failures = [];
  for (let i = 0; i < bases.length; i++) {
    const index = (start + i) % bases.length;
    try {
      return { gate: await askSelector(bases[index], timeoutMs, fetchImpl), index };
    } catch (e) {
      failures.push(e.message);
    }
  }
  throw new BubbleError(10 /* UNAVAILABLE */, `no selector answered: ${failures.join("; ")}`, { retryable: true });
}

// src/serverkey.ts
async function pinServerKey(pem, fingerprintHex) {
  const der = pemToDer(pem, "PUBLIC KEY");
  const expected = fingerprintHex.replace(/[\s:]/g, "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(expected)) {
    throw BubbleError.invalid(`the server key fingerprint must be 64 hex digits (SHA-256 of the key's SPKI DER); got "${fingerprintHex}"`);
  }
  const fingerprint = await sha256(der);
  if (!equalBytes(fingerprint, fromHex(expected))) {
    throw BubbleError.invalid(
      `the server key does not match its pin: the PEM's fingerprint is ${toHex(fingerprint)}, the pin is ${expected}; ship the key and fingerprint the server prints (GET /v1/server-key)`
    );
  }
  let publicKey;
  try {
    publicKey = await webCrypto().subtle.importKey("spki", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]);
  } catch (cause) {
    throw BubbleError.invalid(`the pinned server key is not an RSA public key WebCrypto can use (${String(cause)}): pin the PEM of GET /v1/server-key`);
  }
  const modulusBits = publicKey.algorithm.modulusLength;
  if (![2048, 3072, 4096].includes(modulusBits)) {
    throw BubbleError.invalid(`the server key is ${modulusBits} bits; bubble uses 2048 to 4096-bit keys of whole bytes (256, 384 or 512)`);
  }
  return { publicKey, fingerprint, keyId: fingerprint.slice(0, 8), modulusBytes: modulusBits / 8 };
}

// src/client.ts
var SDK_VERSION = "0.1.0";
var BubbleClient = class {
  constructor(config) {
    this.config = config;
    if (!config.url && !config.selectors?.length) throw BubbleError.invalid("give `url` (a gate's WebSocket URL) or `selectors` (the server's HTTP addresses)");
    if (!config.app || !config.device) throw BubbleError.invalid("`app` and `device` are required");
    this.options = {
      requestTimeoutMs: config.requestTimeoutMs ?? 1e4,
      heartbeatIntervalMs: config.heartbeatIntervalMs ?? 2e4,
      sendRetryForMs: config.sendRetryForMs ?? 6e4,
      syncPageSize: config.syncPageSize ?? 200,
      maxFrameBytes: config.maxFrameBytes ?? DEFAULT_MAX_BODY,
      backoff: { minDelayMs: config.reconnect?.minDelayMs ?? 200, maxDelayMs: config.reconnect?.maxDelayMs ?? 1e4 }
    };
    this.WebSocketCtor = resolveWebSocket(config.WebSocket);
    this.meta = { appId: config.app, deviceId: config.device, platform: config.platform ?? "web", clientVersion: config.clientVersion ?? `bubble-js/${SDK_VERSION}` };
    this.emitter = new Emitter((error, event) => {
      if (event !== "warning") this.emitter.emit("warning", { error: new Error(`a "${String(event)}" listener threw: ${String(error)}`, { cause: error }) });
    });
    this.inbox = new Inbox({
      sync: (after, limit) => this.sync(after, limit),
      pullChannel: (group2, after, limit) => this.channelPull(group2, after, limit),
      store: config.cursorStore ?? new MemoryCursorStore(),
      emit: (event, value) => this.emitter.emit(event, value),
      pageSize: this.options.syncPageSize
    });
  }
  config;
  options;
  emitter;
  inbox;
  meta;
  WebSocketCtor;
  state = "idle";
  stopped;
  pin;
  connection;
  ticket;
  selectorIndex = 0;
  heartbeat;
  retryTimer;
  /** Whether the connect loop runs (one at a time). */
  connecting = false;
  readyWaiters = /* @__PURE__ */ new Set();
  clientSeqs = /* @__PURE__ */ new Map();
  // ------------------------------------------------------------ events
  /** Listens to `event`; returns a function that stops listening. */
  on(event, listener) {
    return this.emitter.on(event, listener);
  }
  off(event, listener) {
    this.emitter.off(event, listener);
  }
  /** The next `event` that `accept` takes, as a promise (rejected after `timeoutMs`, when given). */
  once(event, accept, timeoutMs) {
    return this.emitter.once(event, accept, timeoutMs);
  }
  // ------------------------------------------------------------ lifecycle
  /**
   * Connects and resolves once the first session is up (its catch-up sync
   * runs right after, see the `synced` event). Failures that may pass
   * (server down, rate limited) are retried with backoff; a refused token,
   * a wrong pin or close() reject.
   */
  async connect() {
    if (this.state === "closed") throw this.stopped?.error ?? BubbleError.closed("connect");
    if (this.state === "idle") {
      this.state = "connecting";
      try {
        this.pin = await pinServerKey(this.config.serverKey.pem, this.config.serverKey.fingerprint);
        await this.inbox.load();
      } catch (error) {
        this.stop(error, false);
        throw error;
      }
      this.startConnectLoop();
    }
    await this.whenConnected(void 0, "connect");
  }
  /** Ends the session for good: the connection closes, waiting requests fail, no reconnect. */
  close() {
    this.stop(BubbleError.closed("the request"), this.state === "connected");
  }
  /**
   * Drops the current connection and connects again at once (resuming with
   * the ticket): what an app does when the network changes.
   */
  reconnect() {
    if (this.state === "closed" || this.state === "idle") return;
    if (this.connection) this.connection.close("reconnect() was called");
    else this.retryTimer?.wake();
  }
  /** "idle", "connecting", "connected", "reconnecting" or "closed". */
  get connectionState() {
    return this.state;
  }
  /** The device's cursor: newest inbox version delivered, and per super group the newest seq. */
  get cursor() {
    return this.inbox.position;
  }
  /** Resolves when every push and sync received so far has been delivered as events. */
  settled() {
    return this.inbox.idle();
  }
  /** A method, not a field read, so TypeScript does not narrow it across awaits. */
  isClosed() {
    return this.state === "closed";
  }
  stop(error, wasConnected) {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopped = { error };
    this.stopHeartbeat();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer.timer);
      this.retryTimer.wake();
    }
    const connection = this.connection;
    this.connection = void 0;
    connection?.close(error.message);
    for (const waiter of this.readyWaiters) waiter.reject(error);
    this.readyWaiters.clear();
    if (wasConnected) this.emitter.emit("disconnected", { reason: error.message, willReconnect: false });
  }
  startConnectLoop() {
    if (this.connecting) return;
    this.connecting = true;
    void this.runConnectLoop();
  }
  /**
   * Tries to establish a session until one is up or the client stops. It
   * checks the state before each attempt, so a connection lost while an
   * attempt was finishing (a listener of "connected" calling reconnect())
   * is picked up by the same loop.
   */
  async runConnectLoop() {
    for (let attempt = 1; ; ) {
      if (this.isClosed() || this.state === "connected") {
        this.connecting = false;
        return;
      }
      try {
        await this.establish();
        attempt = 1;
      } catch (e) {
        if (this.isClosed()) continue;
        const error = e instanceof BubbleError ? e : new BubbleError(10 /* UNAVAILABLE */, String(e), { retryable: true, cause: e });
        if (isFatalHandshakeError(error)) {
          this.emitter.emit("authFailed", { error });
          this.stop(error, false);
          continue;
        }
        this.emitter.emit("warning", { error });
        await this.pause(backoffDelay(this.options.backoff, attempt++));
      }
    }
  }
  /** Waits `ms`, or less when reconnect() or close() wakes it. */
  pause(ms) {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryTimer = void 0;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.retryTimer = { timer, wake };
    });
  }
  /** One attempt: pick a gate, resume (or fall back to a full handshake), go live. */
  async establish() {
    const url = await this.gateUrl();
    const connectOptions = {
      WebSocket: this.WebSocketCtor,
      url,
      maxBody: this.options.maxFrameBytes,
      timeoutMs: this.options.requestTimeoutMs,
      dropInbound: this.config.testHooks?.dropInbound
    };
    const events = {
      push: (frame) => this.onPush(frame),
      closed: (reason) => this.onClosed(connection, reason)
    };
    let connection;
    const ticket = this.ticket;
    this.ticket = void 0;
    if (ticketUsable(ticket)) {
      try {
        connection = await Connection.establish(connectOptions, await startResumption(ticket, this.meta, platformRandomness), events);
      } catch (error) {
        if (!(error instanceof BubbleError && error.code === 3 /* HANDSHAKE_FAILED */)) {
          this.ticket = ticket;
          throw error;
        }
      }
    }
    if (!connection) {
      const token = typeof this.config.token === "function" ? await this.config.token() : this.config.token;
      connection = await Connection.establish(connectOptions, await startFullHandshake(this.pin, token, this.meta, platformRandomness), events);
    }
    if (this.isClosed()) {
      connection.close("the client was closed");
      return;
    }
    this.connection = connection;
    this.ticket = connection.keys.ticket;
    this.state = "connected";
    this.startHeartbeat(connection);
    this.inbox.connected();
    for (const waiter of this.readyWaiters) waiter.resolve();
    this.readyWaiters.clear();
    this.emitter.emit("connected", { resumed: connection.keys.resumed, url });
  }
  async gateUrl() {
    if (this.config.url) return this.config.url;
    const { gate, index } = await pickGate(this.config.selectors, this.selectorIndex, this.options.requestTimeoutMs, this.config.fetch);
    this.selectorIndex = index + 1;
    return gate.ws;
  }
  onClosed(connection, reason) {
    if (connection === void 0 || connection !== this.connection) return;
    this.connection = void 0;
    this.stopHeartbeat();
    if (this.state === "closed") return;
    this.state = "reconnecting";
    this.emitter.emit("disconnected", { reason, willReconnect: true });
    this.startConnectLoop();
  }
  onPush(frame) {
    switch (frame.command) {
      case Command.Push:
      case Command.ChannelNotify:
      case Command.SystemPush:
        this.inbox.push(frame);
        return;
      case Command.Typing: {
        const typing = fromBinary(TypingSchema, frame.body);
        if (typing.conversation) this.emitter.emit("typing", { conversation: typing.conversation, userId: typing.userId });
        return;
      }
      case Command.Kick: {
        const kick = fromBinary(KickSchema, frame.body);
        const error = new BubbleError(13 /* GOING_AWAY */, `the server ended this session: ${kick.reason || "(no reason)"}`);
        this.emitter.emit("kick", { reason: kick.reason });
        this.stop(error, true);
        return;
      }
      case Command.Error: {
        const error = decodeError(frame.body);
        this.connection?.close(`the server is closing the connection: ${ErrorCode[error.code] ?? error.code}: ${error.message}`);
        return;
      }
      default:
        if (isBusinessCommand(frame.command)) this.emitter.emit("business", { command: frame.command, body: frame.body });
    }
  }
  startHeartbeat(connection) {
    this.stopHeartbeat();
    const interval = this.options.heartbeatIntervalMs;
    this.heartbeat = setInterval(() => {
      if (connection !== this.connection) return;
      if (Date.now() - connection.lastHeard > interval * 3) {
        connection.close(`nothing heard from the server for ${interval * 3} ms`);
        return;
      }
      connection.request(Command.Ping, toBinary(PingSchema, create(PingSchema, { clientTime: BigInt(Date.now()) })), "Ping", this.options.requestTimeoutMs).catch(() => {
      });
    }, interval);
  }
  stopHeartbeat() {
    if (this.heartbeat !== void 0) clearInterval(this.heartbeat);
    this.heartbeat = void 0;
  }
  /** Resolves when a session is up; rejects after `timeoutMs` (when given) or when the client stops. */
  whenConnected(timeoutMs, what) {
    if (this.state === "connected" && this.connection?.isOpen) return Promise.resolve();
    if (this.state === "closed") return Promise.reject(this.stopped?.error ?? BubbleError.closed(what));
    if (this.state === "idle") return Promise.reject(BubbleError.invalid(`${what}: call connect() first`));
    return new Promise((resolve, reject) => {
      let timer;
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        }
      };
      if (timeoutMs !== void 0) {
        timer = setTimeout(() => {
          this.readyWaiters.delete(waiter);
          reject(new BubbleError(10 /* UNAVAILABLE */, `${what}: not connected within ${timeoutMs} ms; the client keeps reconnecting`, { retryable: true }));
        }, timeoutMs);
      }
      this.readyWaiters.add(waiter);
    });
  }
  // ------------------------------------------------------------ requests
  /**
   * Sends a request and decodes its answer. Waits for a session first (up
   * to the request timeout); an Error answer rejects with its BubbleError.
   */
  async call(command, requestSchema, request, answerCommand, answerSchema) {
    const what = commandName(command);
    const frame = await this.requestRaw(command, toBinary(requestSchema, create(requestSchema, request)), what);
    if (frame.command !== answerCommand) {
      throw BubbleError.protocol(`${what} was answered with ${commandName(frame.command)}; expected ${commandName(answerCommand)}`);
    }
    try {
      return fromBinary(answerSchema, frame.body);
    } catch (cause) {
      throw BubbleError.protocol(`the ${commandName(answerCommand)} answer to ${what} does not decode: ${String(cause)}`, cause);
    }
  }
  async requestRaw(command, body, what) {
    const timeout = this.options.requestTimeoutMs;
    const started = Date.now();
    await this.whenConnected(timeout, what);
    const connection = this.connection;
    if (!connection) throw BubbleError.disconnected(what, "not connected");
    return connection.request(command, body, what, Math.max(1, timeout - (Date.now() - started)));
  }
  /**
   * Sends a message (text or any Content). Resolves with the SendAck once
   * the message is durable in every recipient's inbox. Retryable failures,
   * a dropped connection included, are retried with the same client_msg_id
   * (the server deduplicates) for up to `sendRetryForMs`.
   */
  async send(to, content, options = {}) {
    const request = create(SendRequestSchema, {
      to,
      clientMsgId: options.clientMsgId ?? newClientMsgId(),
      clientSeq: options.clientSeq ?? this.nextClientSeq(to),
      createTime: BigInt(Date.now()),
      content: typeof content === "string" ? textContent(content) : content,
      replyTo: options.replyTo,
      mentions: options.mentions,
      mentionAll: options.mentionAll
    });
    if (!request.clientMsgId || new TextEncoder().encode(request.clientMsgId).length > 128) {
      throw BubbleError.invalid(`client_msg_id must be 1 to 128 bytes; got "${request.clientMsgId.slice(0, 40)}"`);
    }
    return this.sendRequest(request);
  }
  async sendRequest(request) {
    const deadline = Date.now() + this.options.sendRetryForMs;
    const body = toBinary(SendRequestSchema, request);
    const groupId = request.to ? groupIdOf(request.to) : void 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const frame = await this.requestRaw(Command.Send, body, `Send ${request.clientMsgId}`);
        if (frame.command !== Command.SendAck) throw BubbleError.protocol(`Send was answered with ${commandName(frame.command)}`);
        const ack = fromBinary(SendAckSchema, frame.body);
        this.inbox.ownSend(ack, groupId);
        return ack;
      } catch (e) {
        const error = e instanceof BubbleError ? e : BubbleError.protocol(String(e), e);
        const wait = Math.min(2e3, 50 * 2 ** (attempt - 1));
        if (!error.retryable || Date.now() + wait >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
  nextClientSeq(to) {
    const key = conversationKey(to);
    const next = (this.clientSeqs.get(key) ?? 0n) + 1n;
    this.clientSeqs.set(key, next);
    return next;
  }
  /** One page of inbox entries after `afterVersion` (the client syncs by itself; this is the raw request). */
  sync(afterVersion, limit = 0) {
    return this.call(Command.Sync, SyncRequestSchema, { afterVersion, limit }, Command.SyncPage, SyncPageSchema);
  }
  /**
   * One page of a conversation's history, newest first: entries older than
   * `before` (a version; a seq for super groups; 0: from the newest). While
   * `hasMore`, ask again with `before` = the last entry's version (or seq).
   */
  history(conversation, before = 0n, limit = 0) {
    return this.call(Command.History, HistoryRequestSchema, { conversation, before, limit }, Command.HistoryPage, HistoryPageSchema);
  }
  /**
   * One page of the conversation list, newest activity first. While
   * `hasMore`, ask again with `before` = the last summary's `activity`.
   */
  conversations(before = 0n, limit = 0) {
    return this.call(Command.Conversations, ConversationsRequestSchema, { before, limit }, Command.ConversationList, ConversationListSchema);
  }
  /** Marks a conversation read up to a version (a seq for super groups); resolves with how many became read. */
  async markRead(conversation, upTo) {
    const ack = await this.call(Command.MarkRead, MarkReadRequestSchema, { conversation, upTo }, Command.MarkReadAck, MarkReadAckSchema);
    return ack.marked;
  }
  /** Unread counts per conversation (conversations with none are left out). */
  async unread() {
    const counts = await this.call(Command.Unread, UnreadRequestSchema, {}, Command.UnreadCounts, UnreadCountsSchema);
    return counts.counts;
  }
  /**
   * Recalls a message this user sent (within the app's recall window). The
   * ack is the recall entry's: like a send's, it moves the cursor over this
   * device's own entry when nothing came between (protocol.md 4.1).
   */
  async recall(conversation, serverMsgId) {
    const ack = await this.call(Command.Recall, RecallRequestSchema, { conversation, serverMsgId }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }
  /**
   * Replaces the content of a message this user sent, within the app's edit
   * window (protocol.md 4.6a). The ack is the EDIT entry's and moves the
   * cursor like a send's.
   */
  async edit(conversation, serverMsgId, content) {
    const request = { conversation, serverMsgId, content: typeof content === "string" ? textContent(content) : content };
    const ack = await this.call(Command.Edit, EditRequestSchema, request, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }
  /**
   * Adds a reaction (one emoji or short key) to a message, or takes it back
   * with `remove` (protocol.md 4.6b). The ack is the REACTION entry's;
   * `duplicate` when nothing changed.
   */
  async react(conversation, serverMsgId, emoji, { remove = false } = {}) {
    const ack = await this.call(Command.React, ReactRequestSchema, { conversation, serverMsgId, emoji, remove }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, groupIdOf(conversation));
    return ack;
  }
  /**
   * Changes this user's settings of a conversation (pinned, muted, archived,
   * draft, blocked; protocol.md 4.6c); resolves with all of them after the
   * change. A change is a SETTINGS entry in this user's inbox, which the
   * user's other devices receive; its version moves this device's cursor as
   * a send's ack does.
   */
  async settings(conversation, change) {
    const ack = await this.call(Command.Settings, SettingsRequestSchema, { conversation, ...change }, Command.SettingsAck, SettingsAckSchema);
    if (ack.version > 0n) this.inbox.ownSend(create(SendAckSchema, { version: ack.version, prevVersion: ack.prevVersion }), void 0);
    return ack;
  }
  /**
   * Deletes a message from this user's view; the ack is the DELETE entry's
   * and moves the cursor like a send's (protocol.md 4.1).
   */
  async delete(serverMsgId) {
    const ack = await this.call(Command.Delete, DeleteRequestSchema, { serverMsgId }, Command.SendAck, SendAckSchema);
    this.inbox.ownSend(ack, void 0);
    return ack;
  }
  /**
   * Registers this device's push-notification token (protocol.md 4.9a):
   * `platform` is "apns", "fcm" or "webhook"; `quietUntil` (ms since the
   * epoch, 0: off) is do-not-disturb. Registering again replaces it.
   */
  async registerPush(platform, token, options = {}) {
    await this.call(
      Command.PushRegister,
      PushRegisterRequestSchema,
      { platform, token, locale: options.locale ?? "", quietUntil: BigInt(options.quietUntil ?? 0) },
      Command.Ok,
      OkSchema
    );
  }
  /** No more push notifications to this device (at sign-out; protocol.md 4.9a). */
  async unregisterPush() {
    await this.call(Command.PushUnregister, PushUnregisterRequestSchema, {}, Command.Ok, OkSchema);
  }
  /**
   * Tells the server the app went to the background (true) or came back
   * (false): while no device of the user is in the foreground, new messages
   * also make push notifications (protocol.md 4.9a). A browser calls it on
   * `visibilitychange`.
   */
  async setBackground(background) {
    await this.call(Command.AppState, AppStateRequestSchema, { background }, Command.Ok, OkSchema);
  }
  /**
   * Asks where to upload a file (protocol.md 4.9b): PUT the bytes to
   * `uploadUrl` with `headers`, then send a media message whose MediaRef
   * carries `mediaUrl`.
   */
  mediaUploadTicket(mime, size, fileName = "") {
    return this.call(
      Command.MediaUpload,
      MediaUploadRequestSchema,
      { mime, size: BigInt(size), fileName },
      Command.MediaUploadTicket,
      MediaUploadTicketSchema
    );
  }
  /** The users this user blocked, in id order (protocol.md 4.6c). */
  async blocked() {
    const list = await this.call(Command.Blocked, BlockedRequestSchema, {}, Command.BlockedList, BlockedListSchema);
    return list.userIds;
  }
  /** Who of a normal group's members has read a message: "read by N of M" (protocol.md 4.6d). */
  readState(groupId, serverMsgId) {
    return this.call(Command.ReadStateQuery, ReadStateRequestSchema, { groupId, serverMsgId }, Command.ReadState, ReadStateSchema);
  }
  /** The groups this user is a member of, each with its member count (protocol.md 4.7a). */
  async myGroups() {
    const list = await this.call(Command.GroupsQuery, GroupsRequestSchema, {}, Command.GroupList, GroupListSchema);
    return list.groups;
  }
  /** Changes a group's name, avatar, announcement or group-wide mute (owner and admins). */
  updateGroup(groupId, change) {
    return this.call(Command.GroupUpdate, GroupUpdateRequestSchema, { groupId, ...change }, Command.GroupInfo, GroupInfoSchema);
  }
  /** Makes a member an admin, or a plain member again (the owner only). */
  async setGroupRole(groupId, userId, admin) {
    const role = admin ? 2 /* ADMIN */ : 1 /* MEMBER */;
    await this.call(Command.GroupSetRole, GroupRoleRequestSchema, { groupId, userId, role }, Command.Ok, OkSchema);
  }
  /** Hands the group to another member (the owner only); the old owner becomes an admin. */
  async transferGroup(groupId, userId) {
    await this.call(Command.GroupTransfer, GroupTransferRequestSchema, { groupId, userId }, Command.Ok, OkSchema);
  }
  /** Mutes a member until `until` (ms since the epoch; 0n lifts it): owner and admins. */
  async muteGroupMember(groupId, userId, until) {
    await this.call(Command.GroupMute, GroupMuteRequestSchema, { groupId, userId, until }, Command.Ok, OkSchema);
  }
  /** Dismisses the group (the owner only). */
  async dismissGroup(groupId) {
    await this.call(Command.GroupDismiss, GroupDismissRequestSchema, { groupId }, Command.Ok, OkSchema);
  }
  /** Adds members (owner and admins). */
  async addGroupMembers(groupId, userIds) {
    await this.call(Command.GroupAddMembers, GroupMembersChangeRequestSchema, { groupId, userIds }, Command.Ok, OkSchema);
  }
  /** Removes members (owner and admins; never the owner). */
  async removeGroupMembers(groupId, userIds) {
    await this.call(Command.GroupRemoveMembers, GroupMembersChangeRequestSchema, { groupId, userIds }, Command.Ok, OkSchema);
  }
  /** Creates a group owned by this user (an empty id lets the server pick one). */
  createGroup(group2) {
    return this.call(Command.GroupCreate, GroupCreateRequestSchema, group2, Command.GroupInfo, GroupInfoSchema);
  }
  async joinGroup(groupId) {
    await this.call(Command.GroupJoin, GroupJoinRequestSchema, { groupId }, Command.Ok, OkSchema);
  }
  async leaveGroup(groupId) {
    await this.call(Command.GroupLeave, GroupLeaveRequestSchema, { groupId }, Command.Ok, OkSchema);
  }
  /** One page of a group's members in user id order, after `afterUserId`. */
  groupMembers(groupId, afterUserId = "", limit = 0) {
    return this.call(Command.GroupMembersQuery, GroupMembersRequestSchema, { groupId, afterUserId, limit }, Command.GroupMembers, GroupMembersSchema);
  }
  /** Every member of a group, page after page. */
  async allGroupMembers(groupId) {
    const members = [];
    for (let after = ""; ; ) {
      const page = await this.groupMembers(groupId, after);
      members.push(...page.members);
      const last = page.members.at(-1);
      if (!page.hasMore || !last) return members;
      after = last.userId;
    }
  }
  /** A super group's (or "~broadcast"'s) entries after `afterSeq`. */
  channelPull(groupId, afterSeq = 0n, limit = 0) {
    return this.call(Command.ChannelPull, ChannelPullRequestSchema, { groupId, afterSeq, limit }, Command.ChannelPage, ChannelPageSchema);
  }
  /** Who of `userIds` is online, on which devices. */
  async presence(userIds) {
    const result = await this.call(Command.PresenceQuery, PresenceQuerySchema, { userIds }, Command.PresenceResult, PresenceResultSchema);
    return result.users;
  }
  /** Searches this user's own messages. */
  search(query) {
    return this.call(Command.Search, SearchRequestSchema, query, Command.SearchResults, SearchResultsSchema);
  }
  /** Tells the conversation this user is typing (fire and forget; the server passes one per 2 s). */
  typing(conversation) {
    const body = toBinary(TypingSchema, create(TypingSchema, { conversation }));
    this.connection?.fire(Command.Typing, body);
  }
  /** One round trip; resolves with its duration in ms. */
  async ping() {
    const started = Date.now();
    await this.call(Command.Ping, PingSchema, { clientTime: BigInt(started) }, Command.Pong, PongSchema);
    return Date.now() - started;
  }
  /** A product-defined request (command >= 0x8000): the handler's answer body. */
  async business(command, body) {
    if (!isBusinessCommand(command)) throw BubbleError.invalid(`0x${command.toString(16)} is not a business command (0x8000 to 0xffff)`);
    const frame = await this.requestRaw(command, body, commandName(command));
    if (frame.command !== command) throw BubbleError.protocol(`${commandName(command)} was answered with ${commandName(frame.command)}`);
    return frame.body;
  }
};
function groupIdOf(conversation) {
  return conversation.kind === 2 /* GROUP */ || conversation.kind === 3 /* SUPER_GROUP */ ? conversation.id : void 0;
}
function isFatalHandshakeError(error) {
  if (!error.fromServer) return error.code === 7 /* INVALID_ARGUMENT */ || error.code === 1 /* MALFORMED_FRAME */;
  if (error.retryable) return false;
  return ![10 /* UNAVAILABLE */, 15 /* TIMEOUT */, 9 /* RATE_LIMITED */, 13 /* GOING_AWAY */, 14 /* INTERNAL */].includes(error.code);
}
function newClientMsgId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return toHex(bytes);
}
export {
  AfterSendJobSchema,
  AppStateRequestSchema,
  BROADCAST_GROUP,
  BUSINESS_COMMAND_MIN,
  BlockedListSchema,
  BlockedRequestSchema,
  BubbleClient,
  BubbleError,
  ChannelEntrySchema,
  ChannelNotifySchema,
  ChannelPageSchema,
  ChannelPullRequestSchema,
  Command,
  ContentSchema,
  ContentType,
  ContentTypeSchema,
  ConversationKind,
  ConversationKindSchema,
  ConversationListSchema,
  ConversationSchema,
  ConversationSettingsSchema,
  ConversationSummarySchema,
  ConversationsRequestSchema,
  CustomFormat,
  CustomFormatSchema,
  CustomSchema,
  DeleteRequestSchema,
  DevicePresenceSchema,
  Direction,
  DirectionSchema,
  EditRequestSchema,
  EntryKind,
  EntryKindSchema,
  EntryMetaSchema,
  EntrySchema,
  ErrorCode,
  ErrorCodeSchema,
  ErrorSchema,
  FLAG_ENCRYPTED,
  FLAG_RESPONSE,
  ForwardRefSchema,
  FrameError,
  GroupCreateRequestSchema,
  GroupDismissRequestSchema,
  GroupInfoSchema,
  GroupJoinRequestSchema,
  GroupKind,
  GroupKindSchema,
  GroupLeaveRequestSchema,
  GroupListSchema,
  GroupMembersChangeRequestSchema,
  GroupMembersRequestSchema,
  GroupMembersSchema,
  GroupMuteRequestSchema,
  GroupRoleRequestSchema,
  GroupTransferRequestSchema,
  GroupUpdateRequestSchema,
  GroupsRequestSchema,
  HEADER_LEN,
  HistoryPageSchema,
  HistoryRequestSchema,
  KickSchema,
  MarkReadAckSchema,
  MarkReadRequestSchema,
  MediaRefSchema,
  MediaUploadHeaderSchema,
  MediaUploadRequestSchema,
  MediaUploadTicketSchema,
  MemberRole,
  MemberRoleSchema,
  MemberSchema,
  MemoryCursorStore,
  OkSchema,
  PingSchema,
  PongSchema,
  PresenceQuerySchema,
  PresenceResultSchema,
  PushRegisterRequestSchema,
  PushSchema,
  PushUnregisterRequestSchema,
  ReactRequestSchema,
  ReactionChangeSchema,
  ReactionCountSchema,
  ReadStateRequestSchema,
  ReadStateSchema,
  RecallRequestSchema,
  RecordChannel,
  RecordError,
  ReplyRefSchema,
  SDK_VERSION,
  SearchHitSchema,
  SearchRequestSchema,
  SearchResultsSchema,
  SendAckSchema,
  SendRequestSchema,
  SettingsAckSchema,
  SettingsRequestSchema,
  SyncPageSchema,
  SyncRequestSchema,
  SystemPushSchema,
  TypingSchema,
  UnreadCountSchema,
  UnreadCountsSchema,
  UnreadRequestSchema,
  UserPresenceSchema,
  VoiceSchema,
  WebStorageCursorStore,
  askSelector,
  backoffDelay,
  commandName,
  conversationKey,
  cursorAfterOwnSend,
  customOf,
  decideChannelNotify,
  decideInboxPush,
  decideOwnChannelSend,
  decodeFrame,
  decodeHeader,
  direct,
  encodeFrame,
  encodeHeader,
  file_bubble,
  finishHandshake,
  group,
  isBusinessCommand,
  jsonContent,
  maxTokenBytes,
  mediaContent,
  mediaOf,
  newClientMsgId,
  openRecord,
  pinServerKey,
  sealRecord,
  startFullHandshake,
  startResumption,
  superGroup,
  systemConversation,
  textContent,
  textOf,
  voiceContent,
  voiceOf
};
