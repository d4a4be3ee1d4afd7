// The ceiling: Node's own HTTP server answering a fixed body.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('hello world');
createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
